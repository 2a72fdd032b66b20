/**
 * A sentinel restarted from the config it was deployed with, after its
 * primary died, names that dead primary at the epoch it started with, for
 * as long as it meets no peer: it meets them only through the primaries it
 * monitors. ioredis finds that primary unreachable, asks the next sentinel
 * and connects to the promoted replica, which has no replica of its own
 * since the failover; such a primary counts a write only while the
 * sentinels name it (old-primary-woken-after-failover-loses-no-refresh),
 * and the first answer, the stale one, said they did not. So while that
 * sentinel came first in the list every sign-in and refresh answered 503
 * and dropped the connections, though the primary was the sentinels' own.
 * The newest configuration among the answers (the highest config epoch)
 * now decides, as it does between sentinels.
 */
import t from 'tap'
import { parseStore } from '../../src/config/store-url.js'
import type { RedisStoreConfig } from '../../src/config/types.js'
import { SentinelPrimary } from '../../src/redis/sentinel-primary.js'
import { TestClock } from '../helpers/gateway.js'
import { login } from '../helpers/login.js'
import { roleOf, startLoneSentinel, startRedisSentinel } from '../helpers/redis-topology.js'
import { startReplicaSet } from '../helpers/replicas.js'
import { pollUntil } from '../helpers/within.js'

t.test(
  'a sentinel that still names the dead primary does not refuse the writes of the primary that replaced it',
  async (t) => {
    const redis = await startRedisSentinel()
    t.teardown(() => redis.stop())
    await redis.primary.kill()
    await redis.promoted()
    await pollUntil(async () => (await roleOf(redis.replica.port)) === 'master:0', 20_000)
    const stale = await startLoneSentinel({ name: redis.name, port: redis.primary.port })
    t.teardown(() => stale.stop())
    const url = `redis+sentinel://127.0.0.1:${stale.port},127.0.0.1:${redis.sentinel.port}/${redis.name}`

    const primary = new SentinelPrimary(parseStore(url) as Extract<RedisStoreConfig, { kind: 'sentinel' }>)
    t.teardown(() => primary.close())
    await primary.whenReady(5_000)
    t.equal(
      await primary.names({ host: '127.0.0.1', port: redis.replica.port }),
      true,
      'the promoted replica is named: the stale answer is of an older epoch',
    )
    t.equal(
      await primary.names({ host: '127.0.0.1', port: redis.primary.port }),
      false,
      'and the old primary is not, should it wake up',
    )

    // startReplicaSet signs a user in, and fails on a 503 that lasts.
    const set = await startReplicaSet({
      store: url,
      keyPrefix: 'gh:',
      accessTokenTtl: 60,
      now: new TestClock().now,
      count: 1,
    })
    t.teardown(() => set.close())
    const bob = await login(set.urls[0]!, { user: 'bob' })
    t.equal(bob.callback.status, 302, 'a sign-in is stored on the promoted primary')
  },
)
