import t from 'tap'
import { StoreUnavailableError } from '../../src/errors.js'
import { closeRedisClient, createRedisClient, whenReady } from '../../src/redis/connection.js'
import { RedisTokenCache } from '../../src/tokens/redis-token-cache.js'
import { pollUntil, startRedis } from '../helpers/redis.js'

t.test('redis: shared by every replica, stored under {prefix}ct: with a PX TTL', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const clients = [createRedisClient(redis.url), createRedisClient(redis.url)]
  t.teardown(() => Promise.all(clients.map((c) => closeRedisClient(c))))
  await Promise.all(clients.map((c) => whenReady(c)))
  const [one, two] = clients.map((client) => new RedisTokenCache({ client, keyPrefix: redis.prefix }))
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
