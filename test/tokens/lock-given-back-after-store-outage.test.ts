/**
 * A refresh lock that an instance may hold but no holder uses is given back
 * once Redis answers again, not left for its whole lifetime: a release that
 * did not go through while the store was away, and an acquire whose answer
 * never came (its SET ran). Before, such a lock sat on Redis for its TTL
 * (45 s by default), and every refresh of its session waited on it; after
 * a 3 s Sentinel failover mid-refresh, three replicas answered that
 * session's requests 503, each after a 10 s wait, for the rest of the TTL.
 */
import type { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { StoreUnavailableError } from '../../src/errors.js'
import { createRedisClient, whenReady } from '../../src/redis/connection.js'
import { ReplicaConfirmation } from '../../src/redis/durability.js'
import { RedisLockService } from '../../src/tokens/redis-lock.js'
import { startRedis } from '../helpers/redis.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { pollUntil } from '../helpers/within.js'

/** Long beside the test's patience: a lock left behind would outlive every wait here. */
const TTL = 60_000

const redis = await startRedis()
t.teardown(() => redis.stop())

async function client(t: Test, url: string): Promise<Redis> {
  const c = createRedisClient(url)
  t.teardown(() => c.disconnect())
  await whenReady(c)
  return c as Redis
}

/**
 * An instance whose every connection (commands, confirmed writes) goes
 * through a relay the test can silence and cut, as a store failing over does.
 */
async function behindRelay(t: Test): Promise<{ proxy: TcpProxy; locks: RedisLockService }> {
  const proxy = await startTcpProxy(redis.url)
  t.teardown(() => proxy.close())
  const confirm = new ReplicaConfirmation({ client: await client(t, proxy.url) })
  const locks = new RedisLockService({ client: await client(t, proxy.url), confirm, keyPrefix: redis.prefix })
  t.teardown(() => locks.close())
  return { proxy, locks }
}

/** An instance on a direct connection, whose waiters only a release message wakes in time. */
async function onlyHears(t: Test): Promise<{ probe: Redis; locks: RedisLockService }> {
  const probe = await client(t, redis.url)
  const locks = new RedisLockService({ client: probe, keyPrefix: redis.prefix, pollEveryMs: 60_000 })
  t.teardown(() => locks.close())
  return { probe, locks }
}

/** The store comes back: the relay drops what it held and what it relayed, and relays new connections. */
function storeBack(proxy: TcpProxy): void {
  proxy.cut()
  proxy.release()
}

t.test('a release that failed while the store was away is made once it answers', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'needs a redis-server of its own')
  const { proxy, locks } = await behindRelay(t)
  const other = await onlyHears(t)
  const held = (await locks.tryAcquire('release', TTL))!
  t.ok(held, 'the instance behind the relay holds the lock')
  proxy.blackhole()
  await t.rejects(held.release(), StoreUnavailableError, 'the release fails with the store away')
  t.equal(await other.probe.exists(`${redis.prefix}lock:{release}`), 1, 'and the lock is still there')
  const waiting = other.locks.waitForRelease('release', 10_000)
  await pollUntil(async () => (await other.probe.pubsub('NUMSUB', `${redis.prefix}lock-released`))[1] === 1)
  const back = Date.now()
  storeBack(proxy)
  t.equal(await waiting, 'released', 'the waiter hears the release once the store answers')
  t.ok(Date.now() - back < 5_000, `within ${Date.now() - back} ms, not the lock's ${TTL} ms`)
  t.equal(await other.probe.exists(`${redis.prefix}lock:{release}`), 0, 'the lock is gone')
})

t.test('an acquire whose answer never came gives the lock it took back once the store answers', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'needs a redis-server of its own')
  const { proxy, locks } = await behindRelay(t)
  const other = await onlyHears(t)
  // The SET reaches Redis and runs; its answer, and then everything else, is held.
  proxy.holdReplies()
  const acquiring = locks.tryAcquire('acquire', TTL)
  await proxy.replyHeld()
  proxy.blackhole()
  await t.rejects(acquiring, StoreUnavailableError, 'the acquire fails: its answer never came')
  t.equal(await other.probe.exists(`${redis.prefix}lock:{acquire}`), 1, 'though its SET took the lock')
  t.equal(await other.locks.tryAcquire('acquire', TTL), null, 'which no other instance can take')
  const waiting = other.locks.waitForRelease('acquire', 10_000)
  await pollUntil(async () => (await other.probe.pubsub('NUMSUB', `${redis.prefix}lock-released`))[1] === 1)
  const back = Date.now()
  storeBack(proxy)
  t.equal(await waiting, 'released', 'it is given back once the store answers')
  t.ok(Date.now() - back < 5_000, `within ${Date.now() - back} ms, not the lock's ${TTL} ms`)
  t.ok(await other.locks.tryAcquire('acquire', TTL), 'and another instance takes it')
})
