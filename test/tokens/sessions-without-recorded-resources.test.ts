import t from 'tap'
import { sessionRefOf } from '../helpers/app.js'
import { audiencesSeen, ORDERS, REPORTS, startAudienceStack } from '../helpers/audience-stack.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'

/**
 * A session records the resources its login asked for, and its refresh
 * token is redeemed for no other (RFC 8707 §2.2). A session sealed before
 * sessions recorded them does not say what its login asked for, and
 * guessing wrong spends the refresh token on a refusal (oidc-provider
 * rotates it first), so the next refresh is a replay that ends the session.
 * Such a session keeps the resources it has been issued tokens for, which
 * its grant holds for certain, and is refused the others until it signs in
 * again, without a call to the IdP.
 */
t.test(
  'a session without recorded resources keeps those it holds tokens for, and is refused the rest locally',
  async (t) => {
    const redis = await startRedis()
    t.teardown(() => redis.stop())
    const clock = new TestClock()
    const stack = await startAudienceStack({
      redisUrl: redis.url,
      keyPrefix: redis.prefix,
      gateway: { now: clock.now },
    })
    t.teardown(() => stack.close())
    const [url] = stack.urls
    const app = stack.apps[0]!
    t.equal((await apiCall(stack.jar, `${url}/orders/a`)).status, 200)

    // The record as the previous version sealed it: the same, without `resources`.
    const store = app.gatehouse.stores.sessions
    const ref = sessionRefOf(app, stack.jar.get(url!, 'gatehouse')!)
    const { resources, ...before } = (await store.get(ref, clock.now()))!
    t.same(resources, [ORDERS, REPORTS], 'a new session records what its login asked for')
    await store.create(before)
    t.equal((await store.get(ref, clock.now()))?.resources, undefined)

    clock.advance(61_000)
    stack.idp.resetStats()
    const refused = await apiCall(stack.jar, `${url}/reports/a`)
    t.equal(refused.status, 403)
    t.match(refused.json(), { error: 'resource_refused', message: /new sign-in/ })
    t.equal(stack.idp.stats.tokenRequests, 0, 'refused without asking the IdP')

    t.equal(
      (await apiCall(stack.jar, `${url}/orders/b`)).status,
      200,
      'the resource it holds a token for is refreshed',
    )
    t.equal((await apiCall(stack.jar, `${url}/api/b`)).status, 200, 'and so is the login token')
    t.equal(stack.idp.stats.refreshGrants, 2)
    t.equal(stack.idp.stats.refreshReplays, 0)
    t.equal(stack.idp.stats.revokedGrants, 0)
    t.same([...(await audiencesSeen(stack.idp, stack.upstreams.orders))], [ORDERS])
  },
)
