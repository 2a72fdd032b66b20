import t, { type Test } from 'tap'
import { startAudienceStack } from '../helpers/audience-stack.js'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

/**
 * An IdP whose access tokens live no longer than `tokens.refreshBefore`
 * (Keycloak's default is 5 minutes; `refreshBefore: 5m` is a plausible
 * setting) hands out tokens that are due the moment they arrive. One API
 * call then redeemed the refresh token sixteen times, each rotating it,
 * until the flight gave up and used the token it held. Such a token is
 * refreshed halfway through its life instead: once per half-life, however
 * many requests.
 */

const TTL = 20 // s, as the IdP issues them
const REFRESH_BEFORE = 30_000 // ms, longer than the tokens live

/** A stack whose IdP issues TTL-second tokens to a gateway with REFRESH_BEFORE, and its warnings. */
async function shortLivedStack(t: Test, clock: TestClock) {
  const lines: Record<string, unknown>[] = []
  const stack = await startStack(t, {
    accessTokenTtl: TTL,
    config: { refreshBefore: REFRESH_BEFORE, logLevel: 'warn' },
    gateway: { now: clock.now, logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  })
  const warned = () => lines.filter((l) => l.code === 'GATEHOUSE_TOKEN_LIFETIME_SHORT')
  return { stack, warned }
}

t.test('a login token that lives less than refreshBefore is refreshed once per half-life', async (t) => {
  const clock = new TestClock()
  const { stack, warned } = await shortLivedStack(t, clock)
  const base = stack.gateway.url
  const { jar } = await login(base)
  stack.idp.resetStats()

  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200)
  t.equal(stack.idp.stats.refreshGrants, 0, 'a token just issued is used, not refreshed')

  // Usable for 19 s (the IdP's whole seconds, less one): due at half of that.
  // The test clock runs with the real one too, so a loaded machine's
  // seconds since the token came are left room before its half-life.
  clock.advance(5_000)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200)
  t.equal(stack.idp.stats.refreshGrants, 0, 'not due before half its life')

  clock.advance(5_000)
  const storm = await Promise.all(Array.from({ length: 50 }, () => apiCall(jar, `${base}/api/orders`)))
  t.same(new Set(storm.map((r) => r.status)), new Set([200]))
  t.equal(stack.idp.stats.refreshGrants, 1, 'due: one refresh for fifty requests')
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200)
  t.equal(stack.idp.stats.refreshGrants, 1, 'and the refreshed token is not due again at once')
  t.equal(stack.idp.stats.refreshReplays, 0, 'no refresh token replayed')
  t.match(
    warned(),
    [{ level: 40, token: 'user', idp: 'default', lifetimeSeconds: 19, refreshBeforeSeconds: 30 }],
    'the operator is told once that refreshBefore does not apply to these tokens',
  )
})

t.test('a client token that lives less than refreshBefore is fetched once per half-life', async (t) => {
  const clock = new TestClock()
  const { stack, warned } = await shortLivedStack(t, clock)
  const base = stack.gateway.url
  const { jar } = await login(base)
  const call = () => apiCall(jar, `${base}/api/reports`)
  t.equal((await call()).status, 200)
  t.equal((await call()).status, 200)
  t.equal(stack.idp.stats.clientCredentialsGrants, 1, 'the token fetched is used by the next request too')
  clock.advance(10_000)
  await Promise.all(Array.from({ length: 20 }, call))
  t.equal(stack.idp.stats.clientCredentialsGrants, 2, 'fetched again at half its life, once')
  t.match(warned(), [{ token: 'client', lifetimeSeconds: 19 }], 'told once')
})

t.test("a route's own token (RFC 8707 resource) that lives less than refreshBefore", async (t) => {
  const clock = new TestClock()
  const stack = await startAudienceStack({
    accessTokenTtl: TTL,
    refreshBefore: REFRESH_BEFORE,
    gateway: { now: clock.now },
  })
  t.teardown(() => stack.close())
  const [url] = stack.urls
  stack.idp.resetStats()
  t.equal((await apiCall(stack.jar, `${url}/orders/a`)).status, 200)
  t.equal((await apiCall(stack.jar, `${url}/orders/b`)).status, 200)
  t.equal(stack.idp.stats.refreshGrants, 1, 'minted once, then used while not halfway through its life')
  clock.advance(10_000)
  const storm = await Promise.all(Array.from({ length: 20 }, () => apiCall(stack.jar, `${url}/orders/c`)))
  t.same(new Set(storm.map((r) => r.status)), new Set([200]))
  // The login token was due too, but the orders route asks only for its own.
  t.equal(stack.idp.stats.refreshGrants, 2, 'renewed once at half its life')
  t.equal(stack.idp.stats.refreshReplays, 0)
})

t.test('a token whose answer took more than half its life is used, not redeemed again', async (t) => {
  const clock = new TestClock()
  // Usable for 2 s; the default refreshBefore (5 s) halves to 1 s.
  const stack = await startStack(t, { accessTokenTtl: 3, gateway: { now: clock.now } })
  const base = stack.gateway.url
  const { jar } = await login(base)
  clock.advance(1_500)
  stack.idp.resetStats()
  // Each answer takes 1.1 s of the gateway's time: a token arrives with 0.9 s left, already due.
  stack.idp.setTokenEndpointDelay(() => {
    clock.advance(1_100)
    return 0
  })
  const first = await apiCall(jar, `${base}/api/orders`)
  t.equal(first.status, 200, 'the token that came is forwarded')
  t.equal(stack.idp.stats.refreshGrants, 1, 'one redemption for the request, not sixteen')
  t.equal(stack.idp.stats.refreshReplays, 0)
})

t.test('a token that expires before it arrives: one redemption, then a 503 that says why', async (t) => {
  const clock = new TestClock()
  // expires_in 1: a whole second the IdP may have rounded down, so nothing is left of it.
  const stack = await startStack(t, { accessTokenTtl: 1, gateway: { now: clock.now } })
  const base = stack.gateway.url
  const { jar } = await login(base)
  stack.idp.resetStats()
  const answer = await apiCall(jar, `${base}/api/orders`)
  t.equal(answer.status, 503)
  t.match(answer.json(), { error: 'token_refresh_unavailable', message: /expired before it could be used/ })
  t.ok(Number(answer.headers.get('retry-after')) > 0, 'Retry-After')
  t.equal(stack.idp.stats.refreshGrants, 1, 'one redemption, not sixteen')
  t.equal(stack.idp.stats.refreshReplays, 0)
  t.equal((await apiCall(jar, `${base}/auth/user`)).status, 200, 'the session stays')
})

t.test('more route audiences than sixteen, due at once: each request is served', async (t) => {
  const clock = new TestClock()
  const resources = Array.from({ length: 20 }, (_, i) => `https://api-${i}.example`)
  const stack = await startStack(t, {
    gateway: { now: clock.now },
    idp: {
      resourceIndicators: { resources: Object.fromEntries(resources.map((r) => [r, { scopes: [] }])) },
    },
    routes: (echo) => resources.map((resource, i) => route(`/api/r${i}`, echo, { resource })),
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  const all = () => Promise.all(resources.map((_, i) => apiCall(jar, `${base}/api/r${i}/x`)))
  for (const round of ['minted', 'refreshed']) {
    clock.advance(61_000)
    t.same(
      (await all()).map((a) => a.status),
      resources.map(() => 200),
      `${round}: none waits out its rounds`,
    )
  }
  t.equal(stack.idp.stats.refreshReplays, 0)
})
