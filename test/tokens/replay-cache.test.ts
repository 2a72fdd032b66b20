import t from 'tap'
import { createRedisClient, whenReady } from '../../src/redis/connection.js'
import { MemoryReplayCache, RedisReplayCache } from '../../src/tokens/replay-cache.js'
import type { ReplayCache } from '../../src/tokens/types.js'
import { startRedis } from '../helpers/redis.js'

const redis = await startRedis()
t.teardown(() => redis.stop())
const client = createRedisClient(redis.url)
t.teardown(() => client.disconnect())
await whenReady(client)

let now = 1_000_000
const caches: Record<string, ReplayCache> = {
  memory: new MemoryReplayCache(() => now),
  redis: new RedisReplayCache({ client, keyPrefix: redis.prefix }),
}

for (const [kind, cache] of Object.entries(caches)) {
  t.test(`${kind}: a use held is told apart from a use done`, async (t) => {
    t.equal(await cache.claim(`${kind}:a`, 2_000), 'claimed', 'the first claim holds it')
    t.equal(await cache.claim(`${kind}:a`, 2_000), 'held', 'a claim meanwhile finds it held')
    await cache.keep(`${kind}:a`, 60_000)
    t.equal(await cache.claim(`${kind}:a`, 2_000), 'done', 'once kept, a claim finds it done')
  })

  t.test(`${kind}: a hold forgotten is free again, a use done is never forgotten`, async (t) => {
    t.equal(await cache.claim(`${kind}:b`, 2_000), 'claimed')
    await cache.forget(`${kind}:b`)
    t.equal(await cache.claim(`${kind}:b`, 2_000), 'claimed', 'the failed use may be retried')
    // The hold lapsed and another delivery carried the use out: the
    // first one's failure must not make it new again.
    await cache.keep(`${kind}:b`, 60_000)
    await cache.forget(`${kind}:b`)
    t.equal(await cache.claim(`${kind}:b`, 2_000), 'done')
  })

  t.test(
    `${kind}: a use carried out after its sender was told it failed is told apart, and stays`,
    async (t) => {
      t.equal(await cache.claim(`${kind}:o`, 2_000), 'claimed')
      await cache.keep(`${kind}:o`, 60_000, 'owed')
      await cache.forget(`${kind}:o`)
      t.equal(await cache.claim(`${kind}:o`, 2_000), 'owed', 'a repeat finds it owed, not done nor free')
      await cache.keep(`${kind}:o`, 60_000)
      t.equal(await cache.claim(`${kind}:o`, 2_000), 'done', 'and done once the resend is answered')
    },
  )

  t.test(`${kind}: many claims at once, one holds`, async (t) => {
    const claims = await Promise.all(Array.from({ length: 50 }, () => cache.claim(`${kind}:c`, 2_000)))
    t.equal(claims.filter((claim) => claim === 'claimed').length, 1)
    t.equal(claims.filter((claim) => claim === 'held').length, 49)
  })
}

t.test('memory: a hold lapses after its time, a use done after its own', async (t) => {
  const cache = caches.memory!
  t.equal(await cache.claim('d', 2_000), 'claimed')
  now += 2_001
  t.equal(await cache.claim('d', 2_000), 'claimed', 'a hold not kept nor forgotten lapses')
  await cache.keep('d', 60_000)
  now += 59_000
  t.equal(await cache.claim('d', 2_000), 'done')
  now += 1_001
  t.equal(await cache.claim('d', 2_000), 'claimed')
})

t.test('redis: the hold and the use done expire with their own times, in one key', async (t) => {
  const cache = caches.redis!
  const key = `${redis.prefix}seen:e`
  t.equal(await cache.claim('e', 2_000), 'claimed')
  t.equal(await client.get(key), 'held')
  const held = await client.pttl(key)
  t.ok(held > 0 && held <= 2_000, `held for the hold (${held} ms)`)
  await cache.keep('e', 60_000)
  t.equal(await client.get(key), 'done')
  t.ok((await client.pttl(key)) > 2_000, 'kept for its own time')
})

t.test('redis: a key a release before this one wrote is read as done', async (t) => {
  // That release wrote `1` for a hold and a use done alike, and refused both.
  await client.set(`${redis.prefix}seen:f`, '1', 'PX', 60_000)
  t.equal(await caches.redis!.claim('f', 2_000), 'done')
  await caches.redis!.forget('f')
  t.equal(await client.get(`${redis.prefix}seen:f`), '1', 'nor is it forgotten')
})
