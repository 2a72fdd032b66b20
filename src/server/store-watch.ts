import type { FastifyBaseLogger } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import type { GatewayMetrics } from './metrics.js'
import type { Stores } from './stores.js'

/**
 * Reports on the process's stores in Redis (`session.store`) for as long
 * as they are open: the session cache, the store's availability, its
 * evictions and its refusals, logged and measured. Returns what stops the
 * watching, before the stores' own close (which is no outage).
 */
export async function watchRedisStores(
  stores: Stores,
  config: GatehouseConfig,
  metrics: GatewayMetrics,
  log: FastifyBaseLogger,
): Promise<(() => void) | undefined> {
  // Loaded only for Redis, as in createStores: memory mode never loads ioredis.
  const { reportSessionCache } = await import('./redis-stores.js')
  reportSessionCache(stores.sessions, log)
  if (!stores.redis) return undefined
  const { logAvailability } = await import('../redis/availability.js')
  const { exportEvictedKeys, watchEviction } = await import('../redis/eviction.js')
  const { exportRefusals, watchRefusals } = await import('../redis/refusals.js')
  const target = config.session.store.display
  exportEvictedKeys(stores.redis, metrics.registry)
  const unwatch = [logAvailability(stores.redis, log, target), watchEviction(stores.redis, log, target)]
  if (stores.refusals) {
    exportRefusals(stores.refusals, metrics.registry)
    unwatch.push(watchRefusals(stores.refusals, stores.redis, log, target))
  }
  return () => {
    for (const stop of unwatch) stop()
  }
}
