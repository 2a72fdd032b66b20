/**
 * Bytes per session in Redis, measured with `MEMORY USAGE` and with the
 * growth of `used_memory`, for sessions as Gatehouse writes them: with one
 * access token, and with three more per-route tokens in the `tokens` JSON.
 *
 *   npx tsx bench/redis-memory.ts [--sessions N]
 *
 * Token sizes are typical, not measured: a 1,024-byte JWT access token
 * (each per-route token likewise), a 64-byte opaque refresh token, and a
 * few ID token claims. Per-route tokens sit in `tokens.audiences`, keyed
 * by (resource, scopes), as `src/tokens/audience.ts` writes them.
 */
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { IndexHashes } from '../src/crypto/derived-keys.js'
import { closeRedisClient, createRedisClient } from '../src/redis/connection.js'
import { RedisSessionStore } from '../src/session/redis-store.js'
import { SessionKey } from '../src/session/session-key.js'
import type { SessionData } from '../src/session/types.js'
import type { TokenSet } from '../src/types.js'
import { startRedis } from '../test/helpers/redis.js'
import { BENCH_SECRETS } from './session-fixture.js'

const { values } = parseArgs({ options: { sessions: { type: 'string', default: '10000' } } })
const count = Number(values.sessions)
const hashes = new IndexHashes(BENCH_SECRETS)
const jwt = (n: number) => `eyJ${'x'.repeat(1_024 - 3 - n.toString().length)}${n}`

function session(i: number, perRoute: number, now: number): SessionData {
  const tokens = {
    accessToken: jwt(i),
    accessTokenExpiresAt: now + 300_000,
    refreshToken: `r${i}`.padEnd(64, 'r'),
    ...(perRoute > 0
      ? {
          audiences: Object.fromEntries(
            Array.from({ length: perRoute }, (_, r) => [
              `https://api-${r}.example.com `,
              { accessToken: jwt(i * 10 + r), accessTokenExpiresAt: now + 300_000 },
            ]),
          ),
        }
      : {}),
  } satisfies TokenSet
  return {
    id: `${i}`.padStart(43, 'S'),
    key: SessionKey.generate(),
    idp: 'default',
    sub: `user-${i}`,
    sid: `idp-session-${i}`,
    claims: { sub: `user-${i}`, name: 'Alice Example', email: `user-${i}@example.com`, email_verified: true },
    tokens,
    version: 0,
    createdAt: now,
    absoluteExpiresAt: now + 12 * 3_600_000,
    idleExpiresAt: now + 30 * 60_000,
    logoutHandle: `${i}`.padStart(22, 'h'),
  }
}

const redis = await startRedis()
const client = new Redis(redis.url)
try {
  for (const perRoute of [0, 3]) {
    await client.flushall()
    const before = Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1])
    const prefix = 'gatehouse:'
    const connection = createRedisClient(redis.url)
    const store = new RedisSessionStore({
      client: connection,
      keyPrefix: prefix,
      secrets: BENCH_SECRETS,
      idleTimeoutMs: 30 * 60_000,
    })
    await store.whenReady()
    const now = Date.now()
    for (let i = 0; i < count; i += 100)
      await Promise.all(
        Array.from({ length: Math.min(100, count - i) }, (_, j) =>
          store.create(session(i + j, perRoute, now)),
        ),
      )
    await store.close()
    await closeRedisClient(connection)
    const after = Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1])
    const sample = Array.from({ length: 100 }, (_, k) => Math.floor((k * count) / 100))
    const usage = async (key: string) => Number(await client.memory('USAGE', key))
    const sessionKey =
      (await Promise.all(sample.map((i) => usage(`${prefix}s:{${`${i}`.padStart(43, 'S')}}`)))).reduce(
        (a, b) => a + b,
        0,
      ) / sample.length
    const indexKeys =
      (
        await Promise.all(
          sample.map(
            async (i) =>
              (await usage(`${prefix}sub:{${hashes.current('sub', `user-${i}`)}}`)) +
              (await usage(`${prefix}sid:{${hashes.current('sid', `idp-session-${i}`)}}`)),
          ),
        )
      ).reduce((a, b) => a + b, 0) / sample.length
    const perSession = (after - before) / count
    console.log(
      JSON.stringify({
        perRouteTokens: perRoute,
        sessions: count,
        memoryUsageSessionKey: Math.round(sessionKey),
        memoryUsageIndexKeys: Math.round(indexKeys),
        usedMemoryPerSession: Math.round(perSession),
        sessionsPerGiB: Math.floor(2 ** 30 / perSession),
      }),
    )
  }
} finally {
  client.disconnect()
  await redis.stop()
}
