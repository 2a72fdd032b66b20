/**
 * Cross-site WebSocket hijacking on a route set `csrf: false`. A browser
 * cannot put the anti-forgery header on a WebSocket, and sends the cookie
 * whichever site opens the socket, so an upgrade's only proof of being
 * same-origin is its `Origin`. `csrf: false` used to drop that check too:
 * a page of evil.example opened a socket on a `token: user` route, and the
 * upstream got the user's token. Now every route whose upstream gets a
 * token for the session asks its upgrades for this origin whatever `csrf`
 * says; `csrf: false` turns off the header on plain requests only.
 */
import t, { type Test } from 'tap'
import type { DevTokenExchange } from '../../../dev/idp.js'
import type { ExchangeConfig } from '../../../src/config/types.js'
import { route } from '../../helpers/gateway.js'
import { jarFetch, login } from '../../helpers/login.js'
import { startStack } from '../../helpers/stack.js'
import { browserHeaders, openSocket, type Refused, wsUpstream, wsUrl } from '../../helpers/websocket.js'

const LEDGER = 'https://ledger.example'
const EXCHANGE: DevTokenExchange = { audiences: { [LEDGER]: { scopes: ['ledger.read'] } } }
const LEDGER_EXCHANGE: ExchangeConfig = {
  subjectToken: 'access_token',
  audience: LEDGER,
  scopes: [],
  grant: 'token-exchange',
}

/** Every route kind, each `websocket: true` and `csrf: false`. */
async function openStack(t: Test) {
  const upstream = await wsUpstream(t)
  const stack = await startStack(t, {
    idp: { tokenExchange: EXCHANGE },
    routes: () =>
      [
        route('/user', upstream.url),
        route('/maybe', upstream.url, { token: 'optional-user' }),
        route('/service', upstream.url, { token: 'client', scopes: ['reports.read'] }),
        route('/ledger', upstream.url, { token: 'exchange', exchange: LEDGER_EXCHANGE }),
        route('/public', upstream.url, { token: 'none' }),
        route('/kiosk', upstream.url, { token: 'client', scopes: ['reports.read'], anonymous: true }),
      ].map((r) => ({ ...r, websocket: true, csrf: false })),
  })
  return { upstream, stack }
}

/** The upgrade's answer: 101 for a socket that opened (and is closed at once), else the refusal's status and error. */
async function upgrade(url: string, headers: Record<string, string>) {
  try {
    ;(await openSocket(url, headers)).terminate()
    return { status: 101 }
  } catch (err) {
    const { status, body } = err as Refused
    return { status, error: (JSON.parse(body) as { error: string }).error }
  }
}

/** Routes whose upstream gets a token because of the session. */
const SESSION_ROUTES = ['/user', '/maybe', '/service', '/ledger']

t.test(
  "csrf: false on a route that carries the session's token still refuses a foreign or missing Origin on an upgrade",
  async (t) => {
    const { upstream, stack } = await openStack(t)
    const { jar } = await login(stack.gateway.url)
    const before = stack.idp.stats.tokenRequests
    const own = browserHeaders(stack, jar)
    for (const path of SESSION_ROUTES) {
      for (const headers of [
        { ...own, origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
        { ...own, origin: 'https://evil.example' },
        { ...own, 'sec-fetch-site': 'same-site' },
        { cookie: own.cookie! },
      ] as Record<string, string>[]) {
        const answer = await upgrade(wsUrl(stack, `${path}/feed`), headers)
        t.match(
          answer,
          { status: 403, error: 'cross_site_request' },
          `${path}: Origin ${headers.origin}, Sec-Fetch-Site ${headers['sec-fetch-site']}`,
        )
      }
    }
    t.equal(upstream.upgrades.length, 0, 'the upstream never heard of them')
    t.equal(stack.idp.stats.tokenRequests, before, 'no token was fetched or exchanged for them')

    for (const path of SESSION_ROUTES) {
      const socket = await openSocket(wsUrl(stack, `${path}/feed`), own)
      socket.terminate()
    }
    t.equal(upstream.upgrades.length, SESSION_ROUTES.length, 'the same-origin upgrades open')
    for (const seen of upstream.upgrades) t.match(seen.authorization, /^Bearer \S+$/)
  },
)

t.test('csrf: false still spares plain requests on such a route the anti-forgery header', async (t) => {
  const { stack } = await openStack(t)
  const { jar } = await login(stack.gateway.url)
  // The upstream is a WebSocket server only: its 426 is the proof the call was forwarded.
  const plain = await jarFetch(jar, `${stack.gateway.url}/user/feed`)
  t.equal(plain.status, 426, 'forwarded without x-csrf, not refused with 403')
})

t.test(
  'csrf: false on a route that sends no token of the session asks its upgrades for no Origin',
  async (t) => {
    const { upstream, stack } = await openStack(t)
    const { jar } = await login(stack.gateway.url)
    const foreign = { ...browserHeaders(stack, jar), origin: 'https://evil.example' }
    for (const path of ['/public', '/kiosk']) {
      const socket = await openSocket(wsUrl(stack, `${path}/feed`), foreign)
      socket.terminate()
    }
    t.equal(upstream.upgrades.length, 2, 'both opened (a dev server, a kiosk anyone may use)')
    t.equal(upstream.upgrades[0]?.authorization, undefined, 'token: none sends no token')
  },
)
