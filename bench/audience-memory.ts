/**
 * What a token per route audience costs a session, in both stores, run in a
 * process of its own with `--expose-gc`:
 *
 *   node --expose-gc --import tsx bench/audience-memory.ts [count]
 *
 * Each session holds the login's tokens and, in the second half of each
 * run, three audience tokens besides. Unlike bench/memory.ts, every token
 * string is the session's own, because the tokens are what audiences add.
 * Token sizes: opaque (43 characters, oidc-provider's) and JWT-sized
 * (900 characters). Redis: `MEMORY USAGE` of the session hash, sampled.
 * Prints one JSON line.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { closeRedisClient, createRedisClient } from '../src/redis/connection.js'
import { MemorySessionStore } from '../src/session/memory-store.js'
import { RedisSessionStore } from '../src/session/redis-store.js'
import type { SessionData } from '../src/session/types.js'
import type { TokenSet } from '../src/types.js'
import { startRedis } from '../test/helpers/redis.js'
import { benchSession, settledHeap } from './session-fixture.js'

const count = Number(process.argv[2] ?? 20_000)

const AUDIENCES = [
  'https://orders.example ',
  'https://reports.example reports.read',
  'https://billing.example ',
]

function token(length: number): string {
  return randomBytes(Math.ceil((length * 3) / 4))
    .toString('base64url')
    .slice(0, length)
}

function session(i: number, now: number, tokenLength: number, audiences: number): SessionData {
  const tokens: TokenSet = {
    accessToken: token(tokenLength),
    accessTokenExpiresAt: now + 60_000,
    refreshToken: token(43),
    idToken: token(1_100),
    ...(audiences > 0
      ? {
          audiences: Object.fromEntries(
            AUDIENCES.slice(0, audiences).map((key) => [
              key,
              { accessToken: token(tokenLength), accessTokenExpiresAt: now + 60_000 },
            ]),
          ),
        }
      : {}),
  }
  return benchSession(i, now, 'id-token', tokens)
}

async function memoryStoreHeld(tokenLength: number, audiences: number): Promise<number> {
  const now = Date.now()
  const store = new MemorySessionStore({ idleTimeoutMs: 30 * 60_000, maxSessions: count })
  const before = settledHeap()
  for (let i = 0; i < count; i++) await store.create(session(i, now, tokenLength, audiences))
  const after = settledHeap()
  await store.close()
  return Math.round((after - before) / count)
}

async function redisStore(url: string, prefix: string, tokenLength: number, audiences: number) {
  const client = createRedisClient(url)
  const store = new RedisSessionStore({
    client,
    keyPrefix: `${prefix}${tokenLength}:${audiences}:`,
    idleTimeoutMs: 30 * 60_000,
  })
  await store.whenReady()
  const probe = new Redis(url)
  const now = Date.now()
  const samples = 200
  let total = 0
  for (let i = 0; i < samples; i++) {
    const s = session(i, now, tokenLength, audiences)
    await store.create(s)
    total += Number(await probe.memory('USAGE', `${prefix}${tokenLength}:${audiences}:s:{${s.id}}`))
  }
  await probe.quit()
  await store.close()
  await closeRedisClient(client)
  return Math.round(total / samples)
}

const redis = await startRedis()
const result: Record<string, number> = {}
try {
  for (const [name, length] of [
    ['opaque', 43],
    ['jwt', 900],
  ] as const) {
    for (const audiences of [0, 3]) {
      result[`memory_${name}_${audiences}`] = await memoryStoreHeld(length, audiences)
      result[`redis_${name}_${audiences}`] = await redisStore(redis.url, redis.prefix, length, audiences)
    }
  }
} finally {
  await redis.stop()
}
process.stdout.write(`${JSON.stringify({ sessions: count, bytesPerSession: result })}\n`)
