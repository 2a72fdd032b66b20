import t from 'tap'
import { StoreUnavailableError } from '../../src/errors.js'
import { closeRedisClient, createRedisClient, whenReady } from '../../src/redis/connection.js'
import { RedisTokenCache } from '../../src/tokens/redis-token-cache.js'
import { startRedis } from '../helpers/redis.js'
import { pollUntil } from '../helpers/within.js'
import { SECRETS } from '../session/fixtures.js'

t.test('redis: shared by every replica, stored under {prefix}ct: with a PX TTL', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const clients = [createRedisClient(redis.url), createRedisClient(redis.url)]
  t.teardown(() => Promise.all(clients.map((c) => closeRedisClient(c))))
  await Promise.all(clients.map((c) => whenReady(c)))
  const [one, two] = clients.map(
    (client) => new RedisTokenCache({ client, keyPrefix: redis.prefix, secrets: SECRETS }),
  )
  const token = { accessToken: 'cc-1', expiresAt: Date.now() + 60_000 }

  t.equal(await two!.get('orders read'), undefined)
  await one!.set('orders read', token, 30_000)
  t.same(await two!.get('orders read'), token, 'the other replica sees it')
  const pttl = await clients[0]!.pttl(`${redis.prefix}ct:orders read`)
  t.ok(pttl > 29_000 && pttl <= 30_000, `TTL set (${pttl} ms)`)

  await one!.set('short', token, 150)
  await pollUntil(async () => (await two!.get('short')) === undefined, 5_000)
  t.pass('Redis dropped it at its TTL')
  await one!.set('spent', token, 0)
  t.equal(await two!.get('spent'), undefined, 'a token with no time left is not stored')
  await one!.close()

  if (process.env.REDIS_URL) return
  await redis.kill()
  await t.rejects(two!.get('orders read'), StoreUnavailableError)
  await t.rejects(two!.set('orders read', token, 1_000), StoreUnavailableError)
})

t.test('redis: the token is sealed with a key from session.secrets, and rotates with them', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const client = createRedisClient(redis.url)
  t.teardown(() => closeRedisClient(client))
  await whenReady(client)
  const NEW = 'a-rotated-in-session-secret-of-32-characters'
  const unreadable: string[] = []
  const cache = (secrets: readonly string[]) =>
    new RedisTokenCache({
      client,
      keyPrefix: redis.prefix,
      secrets,
      onUnreadable: (reason) => void unreadable.push(reason),
    })
  const token = { accessToken: 'client-credentials-token-value', expiresAt: Date.now() + 60_000 }
  await cache(SECRETS).set('reports', token, 30_000)

  const stored = (await client.get(`${redis.prefix}ct:reports`))!
  t.match(stored, /^a1\.[A-Za-z0-9_-]+\./, 'a sealed value')
  t.notOk(stored.includes(token.accessToken), 'the token is not in Redis')
  t.same(await cache([NEW, ...SECRETS]).get('reports'), token, 'secrets: [new, old] opens it')
  t.equal(await cache([NEW]).get('reports'), undefined, 'with the old secret gone it is absent')
  t.same(unreadable, ['unknown-key'], 'and that is reported')

  await cache([NEW, ...SECRETS]).set('reports', token, 30_000)
  t.same(await cache([NEW]).get('reports'), token, 'written again, it is sealed with the new secret')

  // Moved to another entry, or edited: absent (a new token is fetched), reported.
  await client.copy(`${redis.prefix}ct:reports`, `${redis.prefix}ct:admin`)
  t.equal(await cache([NEW]).get('admin'), undefined, 'another entry')
  await client.set(`${redis.prefix}ct:edited`, JSON.stringify(token))
  t.equal(await cache([NEW]).get('edited'), undefined, 'a plaintext value')
  t.same(unreadable, ['unknown-key', 'refused', 'malformed'])
})
