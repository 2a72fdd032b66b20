/**
 * The local session cache's invalidation connection timed its commands
 * out at 1 s (its maxStalenessMs) whatever `session.storeTimeout` said: a
 * Redis that paused for longer, though within a raised storeTimeout that
 * every request waited out, had the heartbeat time out, the copy emptied
 * and the connection made again, at every pause.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import type { RedisSessionStore } from '../../src/session/redis-store.js'
import { redisStoresOn, startRedis } from '../helpers/redis.js'
import { pollUntil } from '../helpers/within.js'
import { ref, session } from './fixtures.js'

// Past the cache's 1 s staleness bound, well within the raised storeTimeout.
const SLEEP_S = '2'

t.test('with storeTimeout raised, a Redis pause within it leaves the copy armed and kept', async (t) => {
  const redis = await startRedis({ args: ['--enable-debug-command', 'yes'] })
  t.teardown(() => redis.stop())
  const stores = await redisStoresOn(t, redis.url, redis.prefix, { storeTimeout: 10_000 })
  const sessions = stores.sessions as RedisSessionStore
  const cache = sessions.cache!
  t.ok(cache.armed, 'armed')
  const now = Date.now()
  await sessions.create(session('p1', now, { idleExpiresAt: now + 30 * 60_000 }))
  // The create's own invalidation: once it is in, the next read may be kept.
  await cache.sync()
  await sessions.get(ref('p1'), now)
  const key = `${redis.prefix}s:{p1}`
  t.ok(cache.get(key, false), 'the session is in the copy')

  let disarmed = 0
  cache.on('disarmed', () => disarmed++)
  const sleeper = new Redis(redis.url)
  t.teardown(() => sleeper.disconnect())
  // A heartbeat goes out every 250 ms, so some wait on the sleep for more than 1 s.
  await sleeper.call('DEBUG', 'SLEEP', SLEEP_S)
  t.equal(disarmed, 0, 'the heartbeat waits Redis out: not disarmed')
  t.ok(cache.armed, 'still armed')
  t.equal(cache.size, 1, 'the copy was kept')
  await cache.sync()
  // Served again once a heartbeat sent after the pause proves nothing is outstanding.
  await pollUntil(async () => cache.get(key, false) !== undefined)
  t.pass('served from memory again, without reading Redis')
})
