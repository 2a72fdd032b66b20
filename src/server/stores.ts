import type { FastifyBaseLogger } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { MemorySessionStore } from '../session/memory-store.js'
import { MemoryLockService } from '../tokens/memory-lock.js'
import { MemoryRefreshCooldowns } from '../tokens/refresh-cooldown.js'
import { MemoryReplayCache } from '../tokens/replay-cache.js'
import type { Stores } from './store-set.js'

export type { Stores } from './store-set.js'

/**
 * The stores `session.store` names: in memory, or in Redis. The Redis ones
 * are loaded only when asked for, so memory deployments never load ioredis.
 */
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
  const { createRedisStores } = await import('./redis-stores.js')
  return createRedisStores(config, now, log ? { log } : {})
}
