import t from 'tap'
import { GatewayMetrics } from '../../src/server/metrics.js'
import { createRedisStores } from '../../src/server/redis-stores.js'
import { RedisSessionStore } from '../../src/session/redis-store.js'
import { RedisTokenCache } from '../../src/tokens/redis-token-cache.js'
import { testConfig } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { ref, SECRETS, session } from '../session/fixtures.js'

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

t.test(
  "a reload's new secrets change nothing until applied: the swap applies whole or not at all (reload.ts)",
  async (t) => {
    const prefix = `${redis.prefix}stores:prepared:`
    const stores = await createRedisStores(
      testConfig({ port: 1, issuer: 'http://127.0.0.1:1', store: redis.url, keyPrefix: prefix, routes: [] }),
      Date.now,
    )
    t.teardown(() => stores.close())
    const client = stores.redis!
    const NEW = 'a-rotated-in-session-secret-of-32-characters'
    const sessionsUnder = (secrets: readonly string[]) =>
      new RedisSessionStore({ client, keyPrefix: prefix, secrets, idleTimeoutMs: 60_000 })
    const tokensUnder = (secrets: readonly string[]) =>
      new RedisTokenCache({ client, keyPrefix: prefix, secrets })
    const token = { accessToken: 'A', expiresAt: Date.now() + 60_000 }
    const now = Date.now()

    const apply = stores.prepareSecrets!([NEW])
    await stores.sessions.create(session('before', now, { sub: 'bea' }))
    await stores.clientTokens!.set('before', token, 60_000)
    t.same(await sessionsUnder(SECRETS).idsBySub('bea'), ['before'], 'indexed under the running secret')
    t.same(await tokensUnder(SECRETS).get('before'), token, 'sealed with the running secret')

    apply()
    await stores.sessions.create(session('after', now, { sub: 'al' }))
    await stores.clientTokens!.set('after', token, 60_000)
    t.same(await sessionsUnder([NEW]).idsBySub('al'), ['after'], 'indexed under the new secret')
    t.same(await tokensUnder([NEW]).get('after'), token, 'sealed with the new secret')
  },
)
