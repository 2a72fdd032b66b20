import t from 'tap'
import { GatewayMetrics } from '../../src/server/metrics.js'
import { createRedisBackends } from '../../src/server/redis-backends.js'
import { RedisSessionStore } from '../../src/session/redis-store.js'
import { testConfig } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

const config = (localCache?: number) =>
  testConfig({
    port: 1,
    issuer: 'http://127.0.0.1:1',
    store: redis.url,
    keyPrefix: `${redis.prefix}backends:`,
    routes: [],
    ...(localCache === undefined ? {} : { localCache }),
  })

t.test('the local session cache is on by default, armed before the gateway serves', async (t) => {
  const backends = await createRedisBackends(config(), Date.now)
  t.teardown(() => backends.close())
  t.type(backends.sessions, RedisSessionStore)
  const cache = (backends.sessions as RedisSessionStore).cache
  t.ok(cache?.armed, 'armed')
})

t.test('session.localCache: 0 turns it off', async (t) => {
  const backends = await createRedisBackends(config(0), Date.now)
  t.teardown(() => backends.close())
  t.equal((backends.sessions as RedisSessionStore).cache, undefined)
})

t.test('metrics: entries, armed, and hits and misses of the local copy', async (t) => {
  const backends = await createRedisBackends(config(), Date.now)
  t.teardown(() => backends.close())
  const metrics = new GatewayMetrics(backends.sessions)
  const now = Date.now()
  await backends.sessions.create({
    id: 'm1',
    sub: 'alice',
    claims: {},
    tokens: { accessToken: 'A1', accessTokenExpiresAt: now + 60_000 },
    version: 0,
    createdAt: now,
    absoluteExpiresAt: now + 3_600_000,
    idleExpiresAt: now + 30 * 60_000,
    logoutHandle: 'h',
  })
  // The create's own invalidation: once it is in, the first read may be kept.
  await (backends.sessions as RedisSessionStore).cache!.sync()
  await backends.sessions.get('m1', now)
  await backends.sessions.get('m1', now)
  await backends.sessions.get('m1', now)
  const text = await metrics.registry.metrics()
  t.match(text, /^gatehouse_session_cache_entries 1$/m)
  t.match(text, /^gatehouse_session_cache_armed 1$/m)
  t.match(text, /^gatehouse_session_cache_lookups_total\{result="hit"\} 2$/m)
  t.match(text, /^gatehouse_session_cache_lookups_total\{result="miss"\} 1$/m)
})
