import { BoundedMap } from '../bounded-map.js'
import { guarded, type RedisClient } from '../redis/connection.js'
import { type RedisKeys, redisKeys } from '../redis/keys.js'
import type { ReplayCache } from './types.js'

/** One process's replay cache, bounded so a flood of ids cannot grow it without limit. */
export class MemoryReplayCache implements ReplayCache {
  readonly #seen: BoundedMap<string, number>
  readonly #now: () => number

  constructor(now: () => number = Date.now, max = 100_000) {
    this.#now = now
    this.#seen = new BoundedMap(max)
  }

  async firstSeen(key: string, ttlMs: number): Promise<boolean> {
    const now = this.#now()
    const until = this.#seen.get(key)
    if (until !== undefined && until > now) return false
    this.#seen.set(key, now + ttlMs)
    return true
  }

  async forget(key: string): Promise<void> {
    this.#seen.delete(key)
  }

  async keep(key: string, ttlMs: number): Promise<void> {
    this.#seen.set(key, this.#now() + ttlMs)
  }
}

/** Shared by every instance: `SET NX PX` succeeds for exactly one of them. */
export class RedisReplayCache implements ReplayCache {
  readonly #redis: RedisClient
  readonly #keys: RedisKeys

  constructor(options: { client: RedisClient; keyPrefix: string }) {
    this.#redis = options.client
    this.#keys = redisKeys(options.keyPrefix)
  }

  async firstSeen(key: string, ttlMs: number): Promise<boolean> {
    const set = await guarded(() =>
      this.#redis.set(this.#keys.seen(key), '1', 'PX', Math.max(1, ttlMs), 'NX'),
    )
    return set === 'OK'
  }

  async forget(key: string): Promise<void> {
    await guarded(() => this.#redis.del(this.#keys.seen(key)))
  }

  async keep(key: string, ttlMs: number): Promise<void> {
    await guarded(() => this.#redis.set(this.#keys.seen(key), '1', 'PX', Math.max(1, ttlMs)))
  }
}
