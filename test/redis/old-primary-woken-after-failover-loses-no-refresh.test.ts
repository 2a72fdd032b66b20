import t from 'tap'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { roleOf, startRedisSentinel } from '../helpers/redis-topology.js'
import { onceServed, startReplicaSet } from '../helpers/replicas.js'
import { pollUntil } from '../helpers/within.js'

const TTL_S = 60

// The primary hangs past Sentinel's down-after while the gateways are idle,
// Sentinel promotes the replica, and the old primary wakes up still calling
// itself primary, now without a replica, for the seconds before Sentinel
// turns it into one. The gateways' connections to it never closed: a
// refresh then went to it, counted as confirmed (a primary with no replica
// had nothing to wait for), and was thrown away when it was turned; the
// next refresh replayed the consumed token and the IdP revoked the grant.
t.test(
  'a refresh that reaches the old primary woken after its failover is not used, and no grant is revoked',
  async (t) => {
    const redis = await startRedisSentinel()
    t.teardown(() => redis.stop())
    const clock = new TestClock()
    const set = await startReplicaSet({
      store: redis.url,
      keyPrefix: 'gh:',
      accessTokenTtl: TTL_S,
      now: clock.now,
      count: 2,
    })
    t.teardown(() => set.close())
    t.equal((await apiCall(set.jar, `${set.urls[1]}/api/orders`)).status, 200, 'signed in')

    redis.primary.freeze()
    t.teardown(() => redis.primary.thaw())
    await redis.promoted()
    redis.primary.thaw()
    await pollUntil(async () => (await roleOf(redis.primary.port)) === 'master:0', 10_000)

    clock.advance(TTL_S * 1_000)
    const during = await apiCall(set.jar, `${set.urls[1]}/api/orders`)
    t.ok(
      during.status === 503 ? during.headers.has('retry-after') : during.status === 200,
      `the refresh meeting the woken old primary answers 200 or 503 with Retry-After (${during.status})`,
    )
    t.equal((await onceServed(set, set.urls[1]!)).status, 200, 'then the session is served')

    await pollUntil(async () => (await roleOf(redis.primary.port)) === 'slave', 30_000)
    clock.advance(TTL_S * 1_000)
    t.equal(
      (await onceServed(set, set.urls[0]!)).status,
      200,
      'once Sentinel has turned the old primary into a replica, the next refresh works',
    )
    const stats = set.idp.stats
    t.equal(stats.refreshReplays, 0, 'no refresh token replayed')
    t.equal(stats.revokedGrants, 0, 'no grant revoked')
  },
)
