import type { Test } from 'tap'
import t from 'tap'
import { failoverStorm } from '../helpers/failover-storm.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { startRedisSentinel } from '../helpers/redis-topology.js'
import { onceServed, startReplicaSet } from '../helpers/replicas.js'
import { pollUntil } from '../helpers/within.js'

/** Access tokens live a minute of IdP time; the gateways' TestClock crosses expiries at will. */
const TTL_S = 60

/** A fresh Sentinel topology and three gateways on it whose clock the test moves. */
async function failoverSetup(t: Test, confirmWrites = true) {
  const redis = await startRedisSentinel()
  t.teardown(() => redis.stop())
  const clock = new TestClock()
  const set = await startReplicaSet({
    store: redis.url,
    keyPrefix: 'gh:',
    accessTokenTtl: TTL_S,
    now: clock.now,
    confirmWrites,
  })
  t.teardown(() => set.close())
  return { redis, clock, set }
}

/**
 * The primary dies right after a refresh it never passed on to its replica
 * (the relay to the replica holds everything the primary sends), and
 * Sentinel promotes the replica.
 */
async function refreshThenLoseThePrimary(t: Test, confirmWrites: boolean) {
  const { redis, clock, set } = await failoverSetup(t, confirmWrites)
  t.equal((await apiCall(set.jar, `${set.urls[0]}/api/orders`)).status, 200, 'signed in')

  redis.link.holdReplies()
  clock.advance(TTL_S * 1_000)
  const during = await apiCall(set.jar, `${set.urls[1]}/api/orders`)
  await redis.primary.kill()
  await redis.promoted()
  const after = await onceServed(set, set.urls[2]!)
  return { during, after, stats: { ...set.idp.stats } }
}

t.test('a refresh the replica has not confirmed is never used: 503, then the session lives on', async (t) => {
  const { during, after, stats } = await refreshThenLoseThePrimary(t, true)
  t.equal(during.status, 503, 'the refresh could not be made durable: 503')
  t.ok(during.headers.get('retry-after'), 'with Retry-After')
  t.equal(after.status, 200, 'after the failover the same session works')
  t.equal(stats.refreshReplays, 0, 'no refresh token replayed')
  t.equal(stats.revokedGrants, 0, 'no grant revoked')
})

t.test(
  'negative control: without confirmation the refresh is answered, lost in the failover, and the grant revoked',
  async (t) => {
    const { during, after, stats } = await refreshThenLoseThePrimary(t, false)
    t.equal(during.status, 200, 'the refresh was used at once')
    t.ok(
      stats.refreshReplays >= 1,
      `the promoted replica held the consumed token: ${stats.refreshReplays} replay`,
    )
    t.ok(stats.revokedGrants >= 1, 'and the IdP revoked the grant')
    t.equal(after.status, 401, 'the user is logged out by our infrastructure')
  },
)

t.test(
  'SIGKILL of the primary in a 32-way storm across expiries: only 200 or 503, then the same session, no replays',
  async (t) => {
    const { redis, clock, set } = await failoverSetup(t)
    await failoverStorm(t, {
      set,
      clock,
      lifetimeMs: TTL_S * 1_000,
      failover: async () => {
        await redis.primary.kill()
        await redis.promoted()
      },
      errorWindowMs: 12_000,
      hardStopMs: 90_000,
    })
  },
)

t.test(
  'the primary dies while the IdP rotates the token: the new tokens reach the promoted replica, not a replay',
  async (t) => {
    const { redis, clock, set } = await failoverSetup(t)
    t.equal((await apiCall(set.jar, `${set.urls[0]}/api/orders`)).status, 200, 'signed in')

    // The lock is taken and confirmed, the IdP takes its time to answer,
    // and the primary dies in between: the rotated tokens exist only in
    // the memory of the instance that redeemed them.
    set.idp.setTokenEndpointDelay(1_500)
    clock.advance(TTL_S * 1_000)
    const refreshing = apiCall(set.jar, `${set.urls[1]}/api/orders`)
    await pollUntil(async () => set.idp.stats.tokenRequests >= 1, 5_000)
    await redis.primary.kill()
    const during = await refreshing
    set.idp.setTokenEndpointDelay(0)
    await redis.promoted()
    const after = await onceServed(set, set.urls[2]!)
    t.equal(during.status, 200, 'the refreshing request waited out the failover and succeeded')
    t.equal(after.status, 200, 'the same session works on another replica')
    const stats = set.idp.stats
    t.equal(stats.refreshGrants, 1, 'one refresh')
    t.equal(stats.refreshReplays, 0, 'no refresh token replayed')
    t.equal(stats.revokedGrants, 0, 'no grant revoked')
  },
)
