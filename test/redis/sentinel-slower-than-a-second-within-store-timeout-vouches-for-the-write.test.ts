/**
 * A write on a primary without replicas counts only once a sentinel names
 * that primary (SentinelPrimary). Those questions had a fixed 1 s budget
 * whatever `session.storeTimeout` said: a sentinel slower than that, within
 * a raised storeTimeout, had every such write refused as one no sentinel
 * vouched for, where the setting says it should be waited for.
 */
import t from 'tap'
import { redisStoresOn } from '../helpers/redis.js'
import { roleOf, startRedisSentinel } from '../helpers/redis-topology.js'
import { pollUntil } from '../helpers/within.js'
import { session } from '../session/fixtures.js'

// Past the old 1 s budget, well within the raised storeTimeout.
const SILENT_MS = 2_000

t.test('with storeTimeout raised, a sentinel that answers within it vouches for the write', async (t) => {
  const redis = await startRedisSentinel()
  t.teardown(() => redis.stop())
  const stores = await redisStoresOn(t, redis.url, 'gh:', { storeTimeout: 10_000 })
  // No replica: the sentinels are asked whether the primary is still theirs.
  await redis.replica.kill()
  await pollUntil(async () => (await roleOf(redis.primary.port)) === 'master:0', 20_000)

  redis.sentinel.freeze()
  const thaw = setTimeout(() => redis.sentinel.thaw(), SILENT_MS)
  t.teardown(() => {
    clearTimeout(thaw)
    redis.sentinel.thaw()
  })
  const now = Date.now()
  await t.resolves(
    stores.sessions.create(session('v1', now)),
    'the write is vouched for once the sentinel answers',
  )
})
