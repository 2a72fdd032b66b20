import type { FastifyBaseLogger } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import type { LogCode } from '../errors.js'
import { RepeatedLines, repeatedField } from '../repeated-lines.js'
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
    // The bound is hit by sign-ins, each evicting a user's session: a line
    // per eviction would be one per sign-in for as long as the store is full.
    const evictions = new RepeatedLines(undefined, now)
    const code: LogCode = 'GATEHOUSE_SESSION_EVICTED'
    const sessions = new MemorySessionStore({
      idleTimeoutMs: session.idleTimeout,
      maxSessions: session.maxSessions,
      clock: now,
      onEvicted: () => {
        const repeated = evictions.admit(code)
        if (repeated !== undefined)
          log?.warn(
            { code, maxSessions: session.maxSessions, ...repeatedField(repeated) },
            'the memory session store is full (session.maxSessions): the least recently used session was evicted, its user signed out',
          )
      },
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
