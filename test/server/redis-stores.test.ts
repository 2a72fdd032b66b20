import t from 'tap'
import { GatewayMetrics } from '../../src/server/metrics.js'
import { createRedisStores } from '../../src/server/redis-stores.js'
import { RedisSessionStore } from '../../src/session/redis-store.js'
import { testConfig } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { ref, session } from '../session/fixtures.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

const config = (localCache?: number) =>
  testConfig({
    port: 1,
    issuer: 'http://127.0.0.1:1',
    store: redis.url,
    keyPrefix: `${redis.prefix}stores:`,
    routes: [],
    ...(localCache === undefined ? {} : { localCache }),
  })

t.test('the local session cache is on by default, armed before the gateway serves', async (t) => {
  const stores = await createRedisStores(config(), Date.now)
  t.teardown(() => stores.close())
  t.type(stores.sessions, RedisSessionStore)
  const cache = (stores.sessions as RedisSessionStore).cache
  t.ok(cache?.armed, 'armed')
})

t.test('session.localCache: 0 turns it off', async (t) => {
  const stores = await createRedisStores(config(0), Date.now)
  t.teardown(() => stores.close())
  t.equal((stores.sessions as RedisSessionStore).cache, undefined)
})

t.test('metrics: entries, armed, and hits and misses of the local copy', async (t) => {
  const stores = await createRedisStores(config(), Date.now)
  t.teardown(() => stores.close())
  const metrics = new GatewayMetrics(stores.sessions)
  const now = Date.now()
  await stores.sessions.create(session('m1', now, { idleExpiresAt: now + 30 * 60_000 }))
  // The create's own invalidation: once it is in, the first read may be kept.
  await (stores.sessions as RedisSessionStore).cache!.sync()
  await stores.sessions.get(ref('m1'), now)
  await stores.sessions.get(ref('m1'), now)
  await stores.sessions.get(ref('m1'), now)
  const text = await metrics.registry.metrics()
  t.match(text, /^gatehouse_session_cache_entries 1$/m)
  t.match(text, /^gatehouse_session_cache_armed 1$/m)
  t.match(text, /^gatehouse_session_cache_lookups_total\{result="hit"\} 2$/m)
  t.match(text, /^gatehouse_session_cache_lookups_total\{result="miss"\} 1$/m)
})
