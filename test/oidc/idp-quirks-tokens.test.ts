/**
 * The quirks matrix, token side: refresh tokens that never rotate or are
 * not sent again, no revocation endpoint, a slow token endpoint, and
 * token responses whose expires_in is missing or a string. Each on the dev
 * IdP (dev/idp-quirks.ts), with what Gatehouse does and what the operator
 * sees.
 */

import t from 'tap'
import { sessionRefOf } from '../helpers/app.js'
import type { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, CLIENT_SECRET, route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login, parseForm } from '../helpers/login.js'
import { type ObservedStack, startObservedStack } from '../helpers/observed-stack.js'
import { until } from '../helpers/websocket.js'

async function sessionOf(stack: ObservedStack, jar: CookieJar) {
  const store = stack.gateway.app.gatehouse.stores.sessions
  const ref = sessionRefOf(stack.gateway.app, jar.get(stack.gateway.url, 'gatehouse')!)
  return (await store.get(ref, stack.clock.now()))!
}

const storm = (jar: Parameters<typeof apiCall>[0], url: string) =>
  Promise.all(Array.from({ length: 50 }, () => apiCall(jar, url)))

t.test(
  'refresh tokens that never rotate: the same one is redeemed each time, one refresh per storm',
  async (t) => {
    const stack = await startObservedStack(t, { idp: { quirks: { noRotation: true } } })
    const url = `${stack.gateway.url}/api/orders`
    const { jar } = await login(stack.gateway.url)
    const first = (await sessionOf(stack, jar)).tokens.refreshToken
    for (const round of [1, 2]) {
      stack.clock.advance(61_000)
      const answers = await storm(jar, url)
      t.same(new Set(answers.map((a) => a.status)), new Set([200]), `storm ${round}: all 200`)
      t.equal(stack.idp.stats.refreshGrants, round, `storm ${round}: exactly one refresh`)
      t.equal((await sessionOf(stack, jar)).tokens.refreshToken, first, 'the refresh token is the same')
    }
    t.equal(stack.idp.stats.refreshReplays, 0)
    t.same(
      stack.lines.filter((l) => l.level >= 40),
      [],
    )
  },
)

t.test('a refresh answer without refresh_token: the old one is kept and works again', async (t) => {
  const stack = await startObservedStack(t, { idp: { quirks: { noRefreshTokenOnRefresh: true } } })
  const url = `${stack.gateway.url}/api/orders`
  const { jar } = await login(stack.gateway.url)
  const first = (await sessionOf(stack, jar)).tokens.refreshToken
  t.ok(first)
  for (const round of [1, 2]) {
    stack.clock.advance(61_000)
    t.equal((await apiCall(jar, url)).status, 200, `refresh ${round}`)
    t.equal((await sessionOf(stack, jar)).tokens.refreshToken, first, 'kept (RFC 6749 §6)')
  }
  t.equal(stack.idp.stats.refreshGrants, 2)
  t.equal((await apiCall(jar, `${stack.gateway.url}/auth/user`)).json().refreshable, true)
})

t.test(
  'no revocation endpoint: logout ends the session all the same, and the operator was told once',
  async (t) => {
    const stack = await startObservedStack(t, { idp: { quirks: { noRevocation: true } } })
    t.equal(stack.gateway.app.gatehouse.oidc.metadata!.revocation_endpoint, undefined)
    t.match(
      stack.lines.filter((l) => /revocation_endpoint/.test(l.msg)),
      [{ level: 30, msg: /advertises no revocation_endpoint.*cannot revoke the refresh token/ }],
      'one info line at discovery',
    )
    const { jar } = await login(stack.gateway.url)
    const user = (await apiCall(jar, `${stack.gateway.url}/auth/user`)).json<{ logoutUrl: string }>()
    const out = await jarFetch(jar, `${stack.gateway.url}${user.logoutUrl}`)
    t.equal(out.status, 200)
    t.match(
      parseForm(out.text, stack.gateway.url).action,
      /\/session\/end/,
      'on to the IdP to end its session',
    )
    t.equal((await apiCall(jar, `${stack.gateway.url}/auth/user`)).status, 401)
    t.equal(stack.idp.stats.revocations, 0)
    t.same(
      stack.lines.filter((l) => l.level >= 40),
      [],
      'no failure logged: there was nothing to call',
    )
  },
)

t.test(
  'a token endpoint slower than oidc.timeout: 503 naming the limit; the session stays for the next try',
  async (t) => {
    const stack = await startObservedStack(t, { config: { idpTimeout: 500 } })
    const url = `${stack.gateway.url}/api/orders`
    const { jar } = await login(stack.gateway.url)
    stack.idp.setTokenEndpointDelay(800)
    stack.clock.advance(61_000)
    const slow = await apiCall(jar, url)
    t.equal(slow.status, 503)
    t.equal(slow.json().error, 'token_refresh_unavailable')
    t.match(
      stack.lines.find((l) => l.code === 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE'),
      {
        level: 40,
        reason: 'timed out after 500 ms (oidc.timeout)',
      },
    )
    // The IdP answers after all, 300 ms late: that answer is awaited still,
    // and kept (test/tokens/late-refresh-answer-kept.test.ts).
    t.ok(await until(() => stack.lines.some((l) => /late answer/.test(l.msg))), 'the late answer is kept')
    stack.clock.advance(Number(slow.headers.get('retry-after')) * 1_000)
    t.equal((await apiCall(jar, url)).status, 200, 'the session lives on it')
    stack.idp.setTokenEndpointDelay(200)
    stack.clock.advance(61_000)
    t.equal((await apiCall(jar, url)).status, 200, 'slow, but within the budget: served')
  },
)

t.test(
  'a token response without expires_in: the lifetime is assumed (60 s), refreshed in time, warned once',
  async (t) => {
    const stack = await startObservedStack(t, { accessTokenTtl: 600, idp: { quirks: { noExpiresIn: true } } })
    const url = `${stack.gateway.url}/api/orders`
    const before = stack.clock.now()
    const { jar } = await login(stack.gateway.url)
    const after = stack.clock.now()
    const { accessTokenExpiresAt } = (await sessionOf(stack, jar)).tokens
    t.ok(accessTokenExpiresAt >= before + 59_000, 'taken to live 60 s less a second from its request…')
    t.ok(accessTokenExpiresAt <= after + 59_000, '…not the 600 s the IdP did not say')
    stack.clock.advance(56_000)
    t.equal((await apiCall(jar, url)).status, 200)
    t.equal(stack.idp.stats.refreshGrants, 1, 'refreshed before the assumed end (refreshBefore 5 s)')
    stack.clock.advance(56_000)
    t.equal((await apiCall(jar, url)).status, 200)
    t.equal(stack.idp.stats.refreshGrants, 2)
    const warned = stack.lines.filter((l) => l.code === 'GATEHOUSE_TOKEN_LIFETIME_ASSUMED')
    t.match(
      warned,
      [
        {
          level: 40,
          operation: 'code_exchange',
          assumedSeconds: 60,
          msg: /no expires_in \(RFC 6749 §5\.1\)/,
        },
        { level: 40, operation: 'refresh' },
      ],
      'once per kind of call, not once per token',
    )
  },
)

t.test(
  'without expires_in, a JWT access token lives its exp - iat, and nothing is assumed for it',
  async (t) => {
    const resource = 'https://orders.example'
    const stack = await startObservedStack(t, {
      accessTokenTtl: 600,
      idp: {
        quirks: { noExpiresIn: true },
        resourceIndicators: { resources: { [resource]: { scopes: ['orders.read'], format: 'jwt' } } },
      },
      routes: (upstream) => [route('/api/orders', upstream, { resource })],
    })
    const { jar } = await login(stack.gateway.url)
    const before = stack.clock.now()
    t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders`)).status, 200)
    const after = stack.clock.now()
    const [token] = Object.values((await sessionOf(stack, jar)).tokens.audiences ?? {})
    t.match(token?.accessToken, /^ey/, 'the route token is a JWT')
    t.ok(token!.accessTokenExpiresAt >= before + 599_000, 'its own 600 s, less a second')
    t.ok(token!.accessTokenExpiresAt <= after + 599_000)
    t.same(
      stack.lines.filter((l) => l.code === 'GATEHOUSE_TOKEN_LIFETIME_ASSUMED').map((l) => l.operation),
      ['code_exchange'],
      'assumed only for the opaque login token',
    )
  },
)

t.test('expires_in sent as a string: read as the number it says, no warning', async (t) => {
  const stack = await startObservedStack(t, {
    accessTokenTtl: 600,
    idp: { quirks: { stringExpiresIn: true } },
  })
  const before = stack.clock.now()
  const { jar } = await login(stack.gateway.url)
  const after = stack.clock.now()
  const { accessTokenExpiresAt } = (await sessionOf(stack, jar)).tokens
  t.ok(accessTokenExpiresAt >= before + 599_000, 'lives its 600 s (less a second), not an assumed 60')
  t.ok(accessTokenExpiresAt <= after + 599_000)
  const direct = await fetch(new URL('/token', stack.idp.issuer), {
    method: 'POST',
    headers: { authorization: `Basic ${btoa(`${CLIENT_ID}:${CLIENT_SECRET}`)}` },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
  })
  t.equal(typeof (await direct.json()).expires_in, 'string', 'the IdP does send a string')
  t.same(
    stack.lines.filter((l) => l.level >= 40),
    [],
  )
})
