import { createHash } from 'node:crypto'
import { BoundedMap } from '../bounded-map.js'
import { guarded, type RedisClient } from '../redis/connection.js'
import { type RedisKeys, redisKeys } from '../redis/keys.js'
import type { RefreshCooldowns } from './types.js'

/**
 * The cool-down's key for a session and route. Hashed, so the store holds
 * neither the session id nor the route's path next to each other in clear.
 */
export function cooldownKey(sessionId: string, route: string): string {
  return createHash('sha256').update(sessionId).update('\n').update(route).digest('base64url')
}

/**
 * The cool-down's key for a client-credentials token (its cache key):
 * shared by every route that sends it, as the token is. Hashed apart from
 * `cooldownKey`'s, so no session and route can name it.
 */
export function clientCooldownKey(cacheKey: string): string {
  return createHash('sha256').update('client-token\n').update(cacheKey).digest('base64url')
}

/** Tells refused tokens apart without storing one: 128 bits of its SHA-256. */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token).digest('base64url').slice(0, 22)
}

interface Entry {
  readonly fingerprint: string
  readonly until: number
}

/** One process's cool-downs, bounded like every in-process cache (`BoundedMap`). */
export class MemoryRefreshCooldowns implements RefreshCooldowns {
  readonly #entries: BoundedMap<string, Entry>
  readonly #now: () => number

  constructor(now: () => number = Date.now, max = 100_000) {
    this.#now = now
    this.#entries = new BoundedMap(max)
  }

  async claim(key: string, fingerprint: string, ttlMs: number): Promise<boolean> {
    const now = this.#now()
    const held = this.#entries.get(key)
    if (held !== undefined && held.until > now) return held.fingerprint === fingerprint
    this.#entries.set(key, { fingerprint, until: now + ttlMs })
    return true
  }
}

/** Returns the fingerprint held under the key, or stores ours for the TTL and returns false. */
const CLAIM = `
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`

interface CooldownScripts {
  ghClaimCooldown(key: string, fingerprint: string, ttlMs: number): Promise<string | null>
}

/**
 * Shared by every instance: `{prefix}cooldown:{key}` holds the fingerprint
 * of the token that forced the last refresh, and Redis drops it when the
 * cool-down ends. One script, so two instances cannot both see it free.
 */
export class RedisRefreshCooldowns implements RefreshCooldowns {
  readonly #redis: RedisClient & CooldownScripts
  readonly #keys: RedisKeys

  constructor(options: { client: RedisClient; keyPrefix: string }) {
    const redis = options.client as RedisClient & Partial<CooldownScripts>
    if (!redis.ghClaimCooldown) redis.defineCommand('ghClaimCooldown', { numberOfKeys: 1, lua: CLAIM })
    this.#redis = redis as RedisClient & CooldownScripts
    this.#keys = redisKeys(options.keyPrefix)
  }

  async claim(key: string, fingerprint: string, ttlMs: number): Promise<boolean> {
    const held = await guarded(() =>
      this.#redis.ghClaimCooldown(this.#keys.retryCooldown(key), fingerprint, Math.max(1, Math.floor(ttlMs))),
    )
    return held === null || held === fingerprint
  }
}
