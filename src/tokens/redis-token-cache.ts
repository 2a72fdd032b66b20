import { guarded, type RedisClient } from '../redis/connection.js'
import type { CachedToken } from '../types.js'
import type { TokenCache } from './types.js'

/** Options of `RedisTokenCache`. */
export interface RedisTokenCacheOptions {
  /** The command connection; its owner closes it. */
  readonly client: RedisClient
  /** Default `gatehouse:`. */
  readonly keyPrefix?: string
}

/**
 * Client-credentials tokens shared by every instance: `SET {prefix}ct:{key}
 * json PX ttl`, so Redis drops each one with its token.
 */
export class RedisTokenCache implements TokenCache {
  readonly #redis: RedisClient
  readonly #prefix: string

  constructor(options: RedisTokenCacheOptions) {
    this.#redis = options.client
    this.#prefix = `${options.keyPrefix ?? 'gatehouse:'}ct:`
  }

  async get(key: string): Promise<CachedToken | undefined> {
    const value = await guarded(() => this.#redis.get(this.#prefix + key))
    return value ? (JSON.parse(value) as CachedToken) : undefined
  }

  async set(key: string, token: CachedToken, ttlMs: number): Promise<void> {
    // PX must be a positive integer; a token with no time left is not worth storing.
    const px = Math.floor(ttlMs)
    if (px < 1) return
    await guarded(() => this.#redis.set(this.#prefix + key, JSON.stringify(token), 'PX', px))
  }

  /** The connection is shared and closed by its owner. */
  async close(): Promise<void> {}
}
