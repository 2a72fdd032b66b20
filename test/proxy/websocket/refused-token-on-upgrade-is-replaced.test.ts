import type { IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { type WebSocket, WebSocketServer } from 'ws'
import { route } from '../../helpers/gateway.js'
import { login } from '../../helpers/login.js'
import { startStack } from '../../helpers/stack.js'
import {
  browserHeaders,
  metrics,
  nextMessage,
  openSocket,
  type Refused,
  wsUrl,
} from '../../helpers/websocket.js'

/**
 * A WebSocket upstream that, as a resource server does once a token is
 * revoked or its signing keys rotate, answers an upgrade with 401
 * `invalid_token` (RFC 6750 §3.1) for every token in `refused`, and
 * accepts any other; each socket answers a message with the token it opened with.
 */
async function refusingUpstream(t: Test) {
  const refused = new Set<string>()
  const upgrades: IncomingHttpHeaders[] = []
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (info: { req: { headers: IncomingHttpHeaders } }, done) => {
      upgrades.push(info.req.headers)
      if (!refused.has(info.req.headers.authorization ?? '')) done(true)
      else done(false, 401, 'Unauthorized', { 'WWW-Authenticate': 'Bearer error="invalid_token"' })
    },
  })
  await new Promise<void>((resolve) => wss.once('listening', resolve))
  wss.on('connection', (socket, request) =>
    socket.on('message', () => socket.send(request.headers.authorization ?? '')),
  )
  t.teardown(async () => {
    for (const client of wss.clients) client.terminate()
    await new Promise((resolve) => wss.close(resolve))
  })
  return { url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, refused, upgrades }
}

/** The token the upstream's end of `socket` was opened with. */
async function tokenOf(socket: WebSocket): Promise<string> {
  const answer = nextMessage(socket)
  socket.send('which token?')
  return String(await answer)
}

async function setup(
  t: Test,
  options: { retryOnInvalidToken?: boolean; token?: 'client'; scopes?: string[] } = {},
) {
  const upstream = await refusingUpstream(t)
  const stack = await startStack(t, {
    routes: () => [route('/live', upstream.url, { websocket: true, ...options })],
  })
  const { jar } = await login(stack.gateway.url)
  const headers = browserHeaders(stack, jar)
  // The first socket opens with the session's token; the upstream then refuses it.
  const first = await openSocket(wsUrl(stack, '/live/feed'), headers)
  const token = await tokenOf(first)
  first.terminate()
  upstream.refused.add(token)
  upstream.upgrades.length = 0
  return { upstream, stack, headers, token }
}

t.test(
  'an upgrade refused for its token (401 invalid_token) is dialled once more with a new token, and opens',
  async (t) => {
    const { upstream, stack, headers, token } = await setup(t)
    const socket = await openSocket(wsUrl(stack, '/live/feed'), headers)
    t.teardown(() => socket.terminate())
    const replaced = await tokenOf(socket)
    t.not(replaced, token, 'the socket opened with a new token')
    t.match(replaced, /^Bearer /)
    t.same(
      upstream.upgrades.map((h) => h.authorization),
      [token, replaced],
      'the upstream saw the refused token once, then the new one',
    )
    t.match(await metrics(stack), 'gatehouse_upstream_token_retries_total{route="/live"} 1')
  },
)

t.test('an upstream that refuses the new token too is not dialled a third time: 502', async (t) => {
  const { upstream, stack, headers } = await setup(t)
  // Whatever token comes next is refused as well.
  const refuseAll = upstream.refused.has.bind(upstream.refused)
  upstream.refused.has = (value) => value.startsWith('Bearer ') || refuseAll(value)
  const refused = (await openSocket(wsUrl(stack, '/live/feed'), headers).catch((e) => e)) as Refused
  t.equal(refused.status, 502)
  t.match(JSON.parse(refused.body), { error: 'upstream_upgrade_refused' })
  t.equal(upstream.upgrades.length, 2, 'one replay, and only one')
})

t.test('retryOnInvalidToken: false: the refused upgrade is a 502 at once', async (t) => {
  const { upstream, stack, headers } = await setup(t, { retryOnInvalidToken: false })
  const refused = (await openSocket(wsUrl(stack, '/live/feed'), headers).catch((e) => e)) as Refused
  t.equal(refused.status, 502)
  t.equal(upstream.upgrades.length, 1)
})

t.test(
  "a client route's upgrade refused for the gateway's token is dialled once more with a new client-credentials token",
  async (t) => {
    const { upstream, stack, headers, token } = await setup(t, { token: 'client', scopes: ['reports.read'] })
    t.equal(stack.idp.stats.clientCredentialsGrants, 1)
    const socket = await openSocket(wsUrl(stack, '/live/feed'), headers)
    t.teardown(() => socket.terminate())
    const replaced = await tokenOf(socket)
    t.not(replaced, token, 'the socket opened with a new token')
    t.ok(await stack.idp.isActive(replaced.slice(7)), "the gateway's new client-credentials token")
    t.equal(stack.idp.stats.clientCredentialsGrants, 2, 'one new grant')
    t.same(
      upstream.upgrades.map((h) => h.authorization),
      [token, replaced],
    )
  },
)
