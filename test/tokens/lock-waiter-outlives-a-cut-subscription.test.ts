/**
 * A waiter whose instance's subscription to lock releases is cut while it
 * is being made (`CLIENT KILL TYPE pubsub`, a dropped connection) still
 * hears the release. Before, the SUBSCRIBE was failed with the connection
 * (ioredis's `maxRetriesPerRequest: 0`), and every request waiting at that
 * moment answered 503 `session_store_unavailable` though Redis answered
 * all along: 18 of one session's requests in a three-replica storm whose
 * pub/sub connections were killed as the first refresh began.
 */
import type { Redis } from 'ioredis'
import t from 'tap'
import { createRedisClient, whenReady } from '../../src/redis/connection.js'
import { RedisLockService } from '../../src/tokens/redis-lock.js'
import { startRedis } from '../helpers/redis.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { pollUntil } from '../helpers/within.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

t.test(
  'a subscription cut before its answer came is made again, and the waiter hears the release',
  async (t) => {
    if (process.env.REDIS_URL) return t.plan(0, 'needs a redis-server of its own')
    const holderClient = createRedisClient(redis.url) as Redis
    t.teardown(() => holderClient.disconnect())
    await whenReady(holderClient)
    const holder = new RedisLockService({ client: holderClient, keyPrefix: redis.prefix })
    t.teardown(() => holder.close())
    const proxy = await startTcpProxy(redis.url)
    t.teardown(() => proxy.close())
    const waiterClient = createRedisClient(proxy.url)
    t.teardown(() => waiterClient.disconnect())
    await whenReady(waiterClient)
    // Only the release's message can wake the waiter in time.
    const waiter = new RedisLockService({
      client: waiterClient,
      keyPrefix: redis.prefix,
      pollEveryMs: 60_000,
    })
    t.teardown(() => waiter.close())

    const held = (await holder.tryAcquire('cut', 5_000))!
    t.ok(held, 'the other instance holds the lock')
    // The SUBSCRIBE reaches Redis, which subscribes the connection; its answer is held, then the connection cut.
    proxy.holdReplies()
    const waiting = waiter.waitForRelease('cut', 5_000)
    await proxy.replyHeld()
    proxy.cut()
    proxy.release()
    const channel = `${redis.prefix}lock-released`
    await pollUntil(async () => (await holderClient.pubsub('NUMSUB', channel))[1] === 1)
    await held.release('idle')
    // On a loaded machine the waiter's look at the lock after subscribing
    // again can come after the release, and it finds the lock free: heard
    // either way, where a waiter on a lost subscription sat out its wait.
    t.match(await waiting, /^(idle|free)$/, 'the waiter hears the release on the subscription made again')
  },
)
