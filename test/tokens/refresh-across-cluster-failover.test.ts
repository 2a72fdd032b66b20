import type { Test } from 'tap'
import t from 'tap'
import { failoverStorm } from '../helpers/failover-storm.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import {
  commandCalls,
  hgetOn,
  keysOnCluster,
  startRedisCluster,
  type TestRedisCluster,
} from '../helpers/redis-topology.js'
import { onceServed, startReplicaSet } from '../helpers/replicas.js'

/** Access tokens live a minute of IdP time; the gateways' TestClock crosses expiries at will. */
const TTL_S = 60

/** The one session key on the cluster: the test's user is the only one signed in. */
async function sessionKey(cluster: TestRedisCluster): Promise<string> {
  const keys = await keysOnCluster(cluster, 'gh:s:*')
  if (keys.size !== 1) throw new Error(`expected one session key, found ${keys.size}`)
  return [...keys][0]!
}

/** A fresh cluster of 3 masters with a replica each, and three gateways on it whose clock the test moves. */
async function failoverSetup(t: Test) {
  const cluster = await startRedisCluster({ replicas: 1 })
  t.teardown(() => cluster.stop())
  const clock = new TestClock()
  const set = await startReplicaSet({
    store: cluster.url,
    keyPrefix: 'gh:',
    accessTokenTtl: TTL_S,
    now: clock.now,
  })
  t.teardown(() => set.close())
  const key = await sessionKey(cluster)
  const { master, replicas } = await cluster.ownerOf(key)
  return { cluster, clock, set, key, master, replica: replicas[0]! }
}

t.test(
  'the master dies between two refreshes: the next one is stored on the promoted replica, not refused for good',
  async (t) => {
    const { cluster, clock, set, key, master, replica } = await failoverSetup(t)
    t.equal((await apiCall(set.jar, `${set.urls[0]}/api/orders`)).status, 200, 'signed in')

    // No write is in flight when the master dies: nothing but a
    // redirection tells a gateway's connections where its slots went.
    await master.kill()
    await cluster.promoted(replica)
    t.equal(
      (await onceServed(set, set.urls[1]!)).status,
      200,
      'the session is read from the promoted replica',
    )
    clock.advance(TTL_S * 1_000)
    const refreshed = await apiCall(set.jar, `${set.urls[1]}/api/orders`)
    t.equal(refreshed.status, 200, 'the refresh after the failover is answered')
    t.equal(await hgetOn(replica.port, key, 'v'), '1', 'its tokens are on the promoted replica')
    t.equal((await apiCall(set.jar, `${set.urls[2]}/api/orders`)).status, 200, 'the same session works')
    const stats = set.idp.stats
    t.equal(stats.refreshGrants, 1, 'one refresh')
    t.equal(stats.refreshReplays, 0, 'no refresh token replayed')
    t.equal(stats.revokedGrants, 0, 'no grant revoked')
  },
)

t.test(
  'SIGKILL of the master holding the session, in a 32-way storm across expiries: only 200 or 503, then the same session, no replays',
  async (t) => {
    const { cluster, clock, set, key, master, replica } = await failoverSetup(t)
    t.ok(replica, 'the session’s master has a replica')
    t.ok((await commandCalls(master.port, 'WAIT')) >= 1, 'the login’s session write waited for the replica')
    const before = await commandCalls(master.port, 'WAIT')
    clock.advance(TTL_S * 1_000)
    const refreshed = await apiCall(set.jar, `${set.urls[0]}/api/orders`)
    // The body says which refusal it was, should this ever fail again (once, in a full CI run: 401).
    t.equal(refreshed.status, 200, `a refresh${refreshed.status === 200 ? '' : `: ${refreshed.text}`}`)
    t.equal(set.idp.stats.refreshGrants, 1, 'one refresh')
    t.ok((await commandCalls(master.port, 'WAIT')) > before, 'its rotated tokens waited for the replica')
    t.equal(
      await hgetOn(replica.port, key, 'v'),
      '1',
      'and the replica holds them the moment the refresh is answered',
    )
    set.idp.resetStats()

    await failoverStorm(t, {
      set,
      clock,
      lifetimeMs: TTL_S * 1_000,
      failover: async () => {
        await master.kill()
        await cluster.promoted(replica)
      },
      errorWindowMs: 15_000,
      hardStopMs: 60_000,
    })
    t.equal((await cluster.ownerOf(key)).master, replica, 'the replica now serves the session')
  },
)
