/**
 * What one session costs in Redis, by `MEMORY USAGE` of its hash plus its
 * share of the `sub`/`sid` indexes, for both claim shapes:
 *
 *   npx tsx bench/redis-memory.ts [count]
 *
 * Prints one JSON line per shape. Token strings are the same sizes as in
 * bench/memory.ts; the figure is given with and without them.
 */
import { randomBytes } from 'node:crypto'
import { closeRedisClient, createRedisClient, whenReady } from '../src/session/redis-connection.js'
import { RedisSessionStore } from '../src/session/redis-store.js'
import type { TokenSet } from '../src/session/types.js'
import { startRedis } from '../test/helpers/redis.js'
import { type ClaimsShape, claimsOf } from './claims.js'

const count = Number(process.argv[2] ?? 1_000)
const tokens: TokenSet = {
  accessToken: 'a'.repeat(900),
  accessTokenExpiresAt: Date.now() + 60_000,
  refreshToken: 'r'.repeat(43),
  idToken: 'i'.repeat(1_100),
}
const tokenBytes = JSON.stringify(tokens).length

const redis = await startRedis()
const client = createRedisClient(redis.url)
await whenReady(client)
try {
  for (const shape of ['id-token', 'userinfo'] as ClaimsShape[]) {
    const prefix = `${redis.prefix}${shape}:`
    const store = new RedisSessionStore({ client, keyPrefix: prefix, idleTimeoutMs: 30 * 60_000 })
    const now = Date.now()
    for (let i = 0; i < count; i++) {
      const sub = `user-${i}-${randomBytes(6).toString('hex')}`
      await store.create({
        id: randomBytes(32).toString('base64url'),
        sub,
        sid: randomBytes(16).toString('base64url'),
        claims: claimsOf(shape, sub, i),
        tokens: { ...tokens, accessTokenExpiresAt: now + 60_000 },
        version: 0,
        createdAt: now,
        absoluteExpiresAt: now + 12 * 3_600_000,
        idleExpiresAt: now + 30 * 60_000,
        logoutHandle: randomBytes(16).toString('base64url'),
      })
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
