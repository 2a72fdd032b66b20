/**
 * What one session costs in Redis, by `MEMORY USAGE` of its hash plus its
 * share of the `sub`/`sid` indexes, for both claim shapes:
 *
 *   npx tsx bench/redis-claims-memory.ts [count]
 *
 * Prints one JSON line per shape. Token strings are the same sizes as in
 * bench/memory.ts; the figure is given with and without them (without: less
 * the sealed token set, as long as it is stored).
 */
import { closeRedisClient, createRedisClient, whenReady } from '../src/redis/connection.js'
import { RedisSessionStore } from '../src/session/redis-store.js'
import { sealField } from '../src/session/sealed-fields.js'
import { startRedis } from '../test/helpers/redis.js'
import { BENCH_SECRETS, benchSession, type ClaimsShape, TOKENS } from './session-fixture.js'

const count = Number(process.argv[2] ?? 1_000)
// The tokens as the store keeps them: sealed, which is longer than their JSON.
const tokenBytes = sealField(benchSession(0, Date.now(), 'id-token'), 'tokens', TOKENS).length

const redis = await startRedis()
const client = createRedisClient(redis.url)
await whenReady(client)
try {
  for (const shape of ['id-token', 'userinfo'] as ClaimsShape[]) {
    const prefix = `${redis.prefix}${shape}:`
    const store = new RedisSessionStore({
      client,
      keyPrefix: prefix,
      secrets: BENCH_SECRETS,
      idleTimeoutMs: 30 * 60_000,
    })
    const now = Date.now()
    for (let i = 0; i < count; i++) {
      await store.create(benchSession(i, now, shape))
    }
    let total = 0
    const stream = client.scanStream({ match: `${prefix}*`, count: 1_000 })
    for await (const keys of stream as AsyncIterable<string[]>) {
      for (const key of keys) total += Number(await client.memory('USAGE', key, 'SAMPLES', '0'))
    }
    const bytesPerSession = Math.round(total / count)
    process.stdout.write(
      `${JSON.stringify({ store: 'redis', sessions: count, claims: shape, bytesPerSession, bytesPerSessionWithoutTokens: bytesPerSession - tokenBytes })}\n`,
    )
  }
} finally {
  await closeRedisClient(client)
  await redis.stop()
}
