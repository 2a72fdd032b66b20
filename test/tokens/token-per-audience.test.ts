import t from 'tap'
import { MemorySessionStore } from '../../src/session/memory-store.js'
import { audienceOf } from '../../src/tokens/audience.js'
import { MemoryLockService } from '../../src/tokens/memory-lock.js'
import { UserTokens } from '../../src/tokens/user-tokens.js'
import { audiencesSeen, ORDERS, REPORTS, startAudienceStack } from '../helpers/audience-stack.js'
import { route, TestClock, testConfig } from '../helpers/gateway.js'
import { apiCall, jarFetch } from '../helpers/login.js'
import { session } from '../session/fixtures.js'

t.test('each route gets a token for its own resource, minted once and reused', async (t) => {
  const clock = new TestClock()
  const stack = await startAudienceStack({ gateway: { now: clock.now } })
  t.teardown(() => stack.close())
  const [url] = stack.urls
  stack.idp.resetStats()

  for (const path of ['/api/a', '/orders/a', '/reports/a', '/api/b', '/orders/b', '/reports/b']) {
    t.equal((await apiCall(stack.jar, `${url}${path}`)).status, 200, path)
  }
  t.equal(stack.idp.stats.refreshGrants, 2, 'one refresh grant each for orders and reports, then reuse')
  t.same([...(await audiencesSeen(stack.idp, stack.upstreams.orders))], [ORDERS])
  t.same([...(await audiencesSeen(stack.idp, stack.upstreams.reports))], [REPORTS])
  t.same(
    [...(await audiencesSeen(stack.idp, stack.upstreams.api))],
    ['(none)'],
    'the login token, no resource',
  )
  const reportsToken = stack.upstreams.reports.requests[0]!.authorization!.slice(7)
  t.equal((await stack.idp.introspect(reportsToken)).scope, 'reports.read', 'down-scoped by the route scopes')

  // A later lifetime: each audience is refreshed once more, and the rotated
  // refresh token of each redemption is the one the next redemption uses.
  clock.advance(61_000)
  for (const path of ['/orders/c', '/reports/c', '/api/c']) {
    t.equal((await apiCall(stack.jar, `${url}${path}`)).status, 200, path)
  }
  t.equal(stack.idp.stats.refreshGrants, 5)
  t.equal(stack.idp.stats.refreshReplays, 0)
  t.equal(stack.idp.stats.revokedGrants, 0)

  const user = await apiCall(stack.jar, `${url}/auth/user`)
  t.equal(user.status, 200)
  t.notMatch(user.text, /audiences|accessToken|refreshToken/i, '/auth/user lists no token')
  for (const upstream of Object.values(stack.upstreams)) {
    for (const seen of upstream.requests) t.notOk(seen.headers.cookie, 'no session cookie upstream')
  }
})

t.test('the login asks for every configured resource, one parameter each (RFC 8707 §2)', async (t) => {
  const stack = await startAudienceStack()
  t.teardown(() => stack.close())
  const start = await jarFetch(stack.jar, `${stack.urls[0]}/auth/login`)
  t.equal(start.status, 302)
  t.same(new URL(start.location!).searchParams.getAll('resource'), [ORDERS, REPORTS])
})

t.test('a resource the IdP refuses answers 403 resource_refused on that route only', async (t) => {
  const stack = await startAudienceStack({ refusedAtTokenEndpoint: [REPORTS] })
  t.teardown(() => stack.close())
  const [url] = stack.urls
  const refused = await apiCall(stack.jar, `${url}/reports/x`)
  t.equal(refused.status, 403)
  t.equal(refused.json().error, 'resource_refused')
  t.equal((await apiCall(stack.jar, `${url}/orders/x`)).status, 200, 'other resources still work')
  t.equal((await apiCall(stack.jar, `${url}/api/x`)).status, 200, 'the login token still works')
  t.equal((await apiCall(stack.jar, `${url}/auth/user`)).status, 200, 'the session stays')
  t.equal(stack.idp.stats.revokedGrants, 0)
  const metrics = await stack.apps[0]!.gatehouse.metrics.registry.metrics()
  t.match(
    metrics,
    `gatehouse_token_refreshes_total{outcome="invalid_target",resource="${REPORTS}",idp="default"} 1`,
  )
  t.match(metrics, `gatehouse_token_refreshes_total{outcome="success",resource="${ORDERS}",idp="default"} 1`)
})

t.test(
  'without a refresh token a route token cannot be minted: 403 for that route, the session stays',
  async (t) => {
    const now = Date.now()
    const store = new MemorySessionStore({ idleTimeoutMs: 60_000 })
    const record = session('s1', now, { tokens: { accessToken: 'A1', accessTokenExpiresAt: now + 60_000 } })
    await store.create(record)
    const tokens = new UserTokens({
      store,
      locks: new MemoryLockService(),
      oidc: {
        refresh: () => Promise.reject(new Error('no refresh token: the IdP must not be asked')),
      },
      refreshBefore: 5_000,
      refreshWait: 1_000,
      lockTtl: 1_000,
      now: () => now,
    })
    const { routes } = testConfig({
      port: 3000,
      issuer: 'http://127.0.0.1:1',
      routes: [route('/orders', 'http://orders', { resource: ORDERS })],
    })
    const orders = audienceOf(routes[0]!)
    await t.rejects(tokens.accessToken(record, orders), { code: 'GATEHOUSE_ERR_RESOURCE_REFUSED' })
    t.equal(await tokens.accessToken(record), 'A1', 'the login token still serves')
    t.ok(await store.get(record, now), 'the session stays')
  },
)
