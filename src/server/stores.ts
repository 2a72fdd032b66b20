import type { FastifyBaseLogger } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { MemorySessionStore } from '../session/memory-store.js'
import type { SessionStore } from '../session/types.js'
import { MemoryLockService } from '../tokens/memory-lock.js'
import { MemoryRefreshCooldowns } from '../tokens/refresh-cooldown.js'
import { MemoryReplayCache } from '../tokens/replay-cache.js'
import type { LockService, RefreshCooldowns, ReplayCache, TokenCache } from '../tokens/types.js'

/** The stateful parts of one instance, chosen by `session.store`. */
export interface Stores {
  readonly sessions: SessionStore
  readonly locks: LockService
  /** Client-credentials tokens shared across instances; absent in memory mode, where `ClientTokens` keeps the only copy. */
  readonly clientTokens?: TokenCache
  /** The shared Redis connection, for plugins that keep state there (rate limits). */
  readonly redis?: import('../redis/connection.js').RedisClient
  /** Logout-token `jti`s already acted on. */
  readonly replay: ReplayCache
  /** Which refused token last forced a refresh, per session and route (`tokens.retryCooldown`). */
  readonly cooldowns: RefreshCooldowns
  /**
   * `session.secrets` changed by a config reload, for stores that derive
   * keys from them; the memory store keeps nothing sealed.
   */
  useSecrets?(secrets: readonly string[]): void
  close(): Promise<void>
}

export async function createStores(
  config: GatehouseConfig,
  now: () => number,
  log?: FastifyBaseLogger,
): Promise<Stores> {
  const { session } = config
  if (session.store.kind === 'memory') {
    const sessions = new MemorySessionStore({
      idleTimeoutMs: session.idleTimeout,
      maxSessions: session.maxSessions,
      clock: now,
    })
    const locks = new MemoryLockService()
    return {
      sessions,
      locks,
      replay: new MemoryReplayCache(now),
      cooldowns: new MemoryRefreshCooldowns(now),
      async close() {
        await locks.close()
        await sessions.close()
      },
    }
  }
  // Loaded only when asked for, so memory deployments never load ioredis.
  const { createRedisStores } = await import('./redis-stores.js')
  return createRedisStores(config, now, log ? { log } : {})
}
