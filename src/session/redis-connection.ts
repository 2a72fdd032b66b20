import { Redis } from 'ioredis'
import { gatehouseError } from '../errors.js'

export interface RedisConnectionOptions {
  /** Budget of one command, ms; a hung Redis must not hold requests. */
  readonly commandTimeout?: number
  readonly connectTimeout?: number
}

/**
 * One ioredis connection tuned for a request path: commands fail fast while
 * Redis is away (no offline queue, no retries per request, a command
 * timeout), and the connection keeps reconnecting by itself with capped
 * backoff, so the gateway recovers when Redis does without a restart.
 */
export function createRedisClient(url: string, options: RedisConnectionOptions = {}): Redis {
  const client = new Redis(url, {
    commandTimeout: options.commandTimeout ?? 1_000,
    connectTimeout: options.connectTimeout ?? 2_000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
    lazyConnect: false,
  })
  // Without a listener, ioredis would report errors as unhandled 'error'
  // events; outages surface through failed commands instead.
  client.on('error', () => {})
  return client
}

/**
 * Resolves when the connection is ready, or after `timeoutMs` without
 * failing: a gateway whose Redis is down at startup still starts, reports
 * not-ready, and serves once Redis comes up.
 */
export function whenReady(client: Redis, timeoutMs = 2_000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      client.off('ready', done)
      resolve()
    }
    const timer = setTimeout(done, timeoutMs)
    client.once('ready', done)
  })
}

/** Wraps a Redis failure as the catalogue's 503, keeping the cause for logs. */
export function storeUnavailable(cause: unknown): Error {
  return gatehouseError('GATEHOUSE_ERR_STORE_UNAVAILABLE', undefined, cause)
}

/** Runs a Redis call and turns any failure into `GATEHOUSE_ERR_STORE_UNAVAILABLE`. */
export async function guarded<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    throw storeUnavailable(err)
  }
}
