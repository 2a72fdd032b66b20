import t from 'tap'
import { createRedisClient, whenReady } from '../../src/session/redis-connection.js'
import { RedisSessionStore } from '../../src/session/redis-store.js'
import type { SessionData } from '../../src/session/types.js'
import { pollUntil, startRedis } from '../helpers/redis.js'
import { sessionStoreContract } from './store-contract.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

async function open(prefix: string, idleTimeoutMs: number, now = Date.now) {
  const client = createRedisClient(redis.url)
  await whenReady(client)
  const store = new RedisSessionStore({ client, keyPrefix: prefix, idleTimeoutMs, now })
  return { client, store, close: () => client.quit().catch(() => {}) }
}

let n = 0
sessionStoreContract(t, 'redis', (idleTimeoutMs, now) => open(`${redis.prefix}${++n}:`, idleTimeoutMs, now))

t.test('key layout: a hash with a TTL at the idle expiry, and sorted-set indexes', async (t) => {
  const prefix = `${redis.prefix}layout:`
  const { client, store, close } = await open(prefix, 60_000)
  t.teardown(close)
  const now = Date.now()
  await store.create(session('k1', now, { sid: 'idp-sid' }))
  t.same(
    (await client.keys(`${prefix}*`)).sort(),
    [`${prefix}s:k1`, `${prefix}sid:idp-sid`, `${prefix}sub:alice`].sort(),
  )
  const ttl = await client.pttl(`${prefix}s:k1`)
  t.ok(ttl > 55_000 && ttl <= 60_000, `TTL follows idleTimeout (${ttl} ms)`)
  t.same((await client.hkeys(`${prefix}s:k1`)).sort(), ['a', 'd', 'i', 'sid', 'sub', 't', 'v'])
})

t.test('a touch never rewrites tokens: a stale reader cannot put back rotated tokens', async (t) => {
  const prefix = `${redis.prefix}touch:`
  const { client, store, close } = await open(prefix, 60_000)
  t.teardown(close)
  let now = Date.now()
  await store.create(session('k2', now))
  const before = (await store.get('k2', now))!
  const rotated = { accessToken: 'A2', accessTokenExpiresAt: now + 60_000, refreshToken: 'R2' }
  t.equal(await store.updateTokens('k2', before.version, rotated), 'updated')
  // A request that read `before` slides the idle expiry late: the tokens stay.
  now += 30_000
  const touched = (await store.get('k2', now))!
  t.equal(touched.tokens.refreshToken, 'R2')
  t.equal(touched.idleExpiresAt, now + 60_000, 'the idle expiry slid')
  t.equal(
    await store.updateTokens('k2', before.version, before.tokens),
    'stale',
    'the old snapshot cannot write',
  )
  t.equal(JSON.parse((await client.hget(`${prefix}s:k2`, 't'))!).refreshToken, 'R2')
})

t.test(
  'an outage answers fast with GATEHOUSE_ERR_STORE_UNAVAILABLE; sessions survive; it reconnects alone',
  async (t) => {
    if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
    const prefix = `${redis.prefix}outage:`
    const { store, close } = await open(prefix, 60_000)
    t.teardown(close)
    const now = Date.now()
    await store.create(session('k3', now))

    await redis.kill()
    const started = Date.now()
    await t.rejects(store.get('k3', now), { code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE' })
    await t.rejects(store.ping(), { code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE' })
    t.ok(Date.now() - started < 1_500, 'down: fails within the command budget')

    await redis.restart()
    await pollUntil(() =>
      store.ping().then(
        () => true,
        () => false,
      ),
    )
    t.equal(
      (await store.get('k3', now))?.sub,
      'alice',
      'the session written before the outage is still valid',
    )

    redis.freeze()
    const frozen = Date.now()
    await t.rejects(store.get('k3', now), { code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE' })
    t.ok(Date.now() - frozen < 2_000, 'hung: fails within the command timeout')
    redis.resume()
    await pollUntil(() =>
      store.ping().then(
        () => true,
        () => false,
      ),
    )
    t.equal((await store.get('k3', now))?.sub, 'alice')
  },
)

function session(id: string, now: number, extra: Partial<SessionData> = {}): SessionData {
  return {
    id,
    sub: 'alice',
    claims: { name: 'Alice' },
    tokens: { accessToken: 'A1', accessTokenExpiresAt: now + 60_000, refreshToken: 'R1', idToken: 'I1' },
    version: 0,
    createdAt: now,
    absoluteExpiresAt: now + 3_600_000,
    idleExpiresAt: now + 60_000,
    logoutHandle: 'h',
    ...extra,
  }
}
