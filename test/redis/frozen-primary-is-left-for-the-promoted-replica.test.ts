import t from 'tap'
import { parseStore } from '../../src/config/store-url.js'
import type { RedisStoreConfig } from '../../src/config/types.js'
import { closeRedisClient, createRedisClient, whenReady } from '../../src/redis/connection.js'
import { probeClient, startRedisSentinel } from '../helpers/redis-topology.js'
import { pollUntil } from '../helpers/within.js'

// A primary that hangs (SIGSTOP, a paused VM, CLIENT PAUSE, a partition)
// keeps its sockets open: no reset comes, so the connection never closed,
// never asked the sentinels again, and every command timed out for as long
// as the old primary stayed silent (the kernel's keep-alive answers for a
// stopped process), although Sentinel had promoted the replica in seconds.
t.test(
  'a primary frozen past its failover is left for the replica Sentinel promoted, without a restart',
  async (t) => {
    const redis = await startRedisSentinel()
    t.teardown(() => redis.stop())
    const client = createRedisClient(parseStore(redis.url) as RedisStoreConfig)
    t.teardown(() => closeRedisClient(client))
    await whenReady(client, 5_000)
    t.equal(await client.set('k', 'before'), 'OK', 'written to the primary')

    redis.primary.freeze()
    t.teardown(() => redis.primary.thaw())
    await redis.promoted()

    let written = false
    await pollUntil(async () => {
      written = (await client.set('k', 'after').catch(() => null)) === 'OK'
      return written
    }, 15_000).catch(() => {})
    t.ok(written, 'a write succeeds while the old primary is still frozen')
    const replica = probeClient(redis.replica.port)
    t.teardown(() => replica.disconnect())
    await replica.connect()
    t.equal(await replica.get('k'), 'after', 'on the promoted replica')
  },
)
