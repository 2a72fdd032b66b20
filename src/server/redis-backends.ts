import type { FastifyBaseLogger } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { createRedisClient, whenReady } from '../session/redis-connection.js'
import { RedisSessionStore } from '../session/redis-store.js'
import type { SessionStore } from '../session/types.js'
import { RedisLockService } from '../tokens/redis-lock.js'
import { RedisTokenCache } from '../tokens/redis-token-cache.js'
import { RedisReplayCache } from '../tokens/replay-cache.js'
import type { Backends } from './backends.js'

/**
 * Sessions, locks and client tokens in one Redis, over one command
 * connection, plus one for lock releases and one for the local session
 * cache's invalidations.
 */
export async function createRedisBackends(config: GatehouseConfig, now: () => number): Promise<Backends> {
  const client = createRedisClient(config.session.store)
  await whenReady(client)
  const prefix = config.session.keyPrefix
  const locks = new RedisLockService({ client, keyPrefix: prefix })
  const sessions = new RedisSessionStore({
    client,
    keyPrefix: prefix,
    idleTimeoutMs: config.session.idleTimeout,
    now,
    ...(config.session.localCache > 0
      ? { cache: { url: config.session.store, maxEntries: config.session.localCache } }
      : {}),
  })
  await sessions.whenReady()
  return {
    sessions,
    locks,
    clientTokens: new RedisTokenCache({ client, keyPrefix: prefix }),
    replay: new RedisReplayCache({ client, keyPrefix: prefix }),
    redis: client,
    async close() {
      await Promise.all([locks.close(), sessions.close()])
      // quit() waits for replies in flight; a dead Redis would make it hang.
      await Promise.race([client.quit().catch(() => {}), new Promise((r) => setTimeout(r, 1_000).unref())])
      client.disconnect()
    },
  }
}

/**
 * Says once why the local session cache is off when Redis refuses
 * `CLIENT TRACKING` (before 6.0, or an ACL without `client`): the gateway
 * stays correct, only every request then costs a round trip.
 */
export function reportSessionCache(store: SessionStore, log: FastifyBaseLogger): void {
  const cache = store instanceof RedisSessionStore ? store.cache : undefined
  if (!cache) return
  const warn = (err: Error) =>
    log.warn(
      { code: 'GATEHOUSE_SESSION_CACHE_OFF', reason: err.message },
      'Redis refused CLIENT TRACKING; the local session cache is off and every request reads Redis',
    )
  if (cache.refused) warn(cache.refused)
  else cache.once('unsupported', warn)
}
