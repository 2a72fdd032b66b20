import type { Redis } from 'ioredis'
import { guarded } from '../session/redis-connection.js'
import type { CachedToken, TokenCache } from './types.js'

/** Client-credentials tokens shared by every instance, expiring with the token. */
export class RedisTokenCache implements TokenCache {
  readonly #redis: Redis
  readonly #prefix: string

  constructor(options: { client: Redis; keyPrefix: string }) {
    this.#redis = options.client
    this.#prefix = `${options.keyPrefix}ct:`
  }

  async get(key: string): Promise<CachedToken | undefined> {
    const value = await guarded(() => this.#redis.get(this.#prefix + key))
    return value ? (JSON.parse(value) as CachedToken) : undefined
  }

  async set(key: string, token: CachedToken, ttlMs: number): Promise<void> {
    await guarded(() =>
      this.#redis.set(this.#prefix + key, JSON.stringify(token), 'PX', Math.max(1, Math.floor(ttlMs))),
    )
  }

  async close(): Promise<void> {}
}
