import type { EventEmitter } from 'node:events'
import { Redis } from 'ioredis'
import { StoreUnavailableError } from './store-errors.js'

export interface RedisConnectionOptions {
  /** Budget of one command, ms; a hung Redis must not hold requests. */
  readonly commandTimeout?: number
  /** Budget of one connection attempt, ms. */
  readonly connectTimeout?: number
  /** Longest pause between reconnection attempts, ms. */
  readonly maxReconnectDelay?: number
  /** RESP version; default 3. */
  readonly protocol?: 2 | 3
  /** Subscribe again after a reconnect; default true. */
  readonly autoResubscribe?: boolean
}

/**
 * One ioredis connection tuned for a request path: commands fail fast while
 * Redis is away (no offline queue, no retries per request, a command
 * timeout), and the connection keeps reconnecting by itself with capped
 * backoff, so the gateway recovers when Redis does without a restart.
 */
export function createRedisClient(url: string, options: RedisConnectionOptions = {}): Redis {
  const maxDelay = options.maxReconnectDelay ?? 2_000
  const client = new Redis(url, {
    commandTimeout: options.commandTimeout ?? 1_000,
    connectTimeout: options.connectTimeout ?? 2_000,
    // An offline queue would hold requests for as long as the outage lasts;
    // failing them at once lets the gateway answer 503 within its budget.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Never gives up (a null would stop reconnecting for good).
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 10), maxDelay),
    lazyConnect: false,
    ...(options.protocol ? { protocol: options.protocol } : {}),
    ...(options.autoResubscribe === false ? { autoResubscribe: false } : {}),
  })
  // Without a listener, ioredis reports connection errors as unhandled
  // 'error' events and the process dies; outages surface through failed
  // commands instead.
  client.on('error', () => {})
  return client
}

/**
 * Resolves when the connection is ready, or after `timeoutMs` without
 * failing: a gateway whose Redis is down at startup still starts, reports
 * not-ready, and serves once Redis comes up.
 */
export function whenReady(client: Redis, timeoutMs = 2_000): Promise<void> {
  return client.status === 'ready' ? Promise.resolve() : eventOrTimeout(client, 'ready', timeoutMs)
}

/** Resolves on `event`, or after `timeoutMs`, whichever comes first; never rejects. */
export function eventOrTimeout(emitter: EventEmitter, event: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      emitter.off(event, done)
      resolve()
    }
    const timer = setTimeout(done, timeoutMs)
    emitter.once(event, done)
  })
}

/**
 * Closes a connection: `QUIT` lets replies in flight arrive, but waits on a
 * dead or frozen Redis, so it is bounded and followed by a disconnect.
 */
export async function closeRedisClient(client: Redis, timeoutMs = 1_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    client.quit().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs)
    }),
  ])
  clearTimeout(timer)
  client.disconnect()
}

/** Wraps a Redis failure as the catalogue's 503, keeping the cause for logs. */
export function storeUnavailable(cause: unknown): StoreUnavailableError {
  return cause instanceof StoreUnavailableError ? cause : new StoreUnavailableError(cause)
}

/** Runs a Redis call and turns any failure into a `StoreUnavailableError`. */
export async function guarded<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    throw storeUnavailable(err)
  }
}
