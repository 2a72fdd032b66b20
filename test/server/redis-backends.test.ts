import t from 'tap'
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
