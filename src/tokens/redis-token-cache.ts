import { clientTokenKeys } from '../crypto/derived-keys.js'
import { SealingKey, type UnsealReason } from '../crypto/sealing-key.js'
import { guarded, type RedisClient } from '../redis/connection.js'
import { type RedisKeys, redisKeys } from '../redis/keys.js'
import type { CachedToken } from '../types.js'
import type { TokenCache } from './types.js'

/** Deletes the key only if it holds the value given: one script, so no write can come between. */
const DROP_IF_SAME = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

/**
 * Stores ARGV[1] for ARGV[2] ms unless the key holds a copy that outlives
 * that, compared by what Redis has left of its TTL: each writer's TTL is
 * its token's expiry less its own clock, so clocks that disagree do not
 * skew it. A copy equal to ARGV[3], one the writer found no configured
 * secret opens, is replaced whatever it has left: it is absent to every reader.
 */
const SET_UNLESS_OUTLIVED = `
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[3] and redis.call('PTTL', KEYS[1]) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`

interface CacheScripts {
  ghDropClientToken(key: string, sealed: string): Promise<number>
  ghSetClientToken(key: string, sealed: string, px: number, unreadable: string): Promise<number>
}

/** Options of `RedisTokenCache`. */
export interface RedisTokenCacheOptions {
  /** The command connection; its owner closes it. */
  readonly client: RedisClient
  /** Default `gatehouse:`. */
  readonly keyPrefix?: string
  /** `session.secrets`, newest first: tokens are sealed with a key derived from the first, opened with any. */
  readonly secrets: readonly string[]
  /**
   * Told when a cached token did not open (sealed under a secret no longer
   * configured, or tampered with); the token then counts as absent and a
   * new one is fetched and stored over it.
   */
  readonly onUnreadable?: (reason: UnsealReason) => void
}

/**
 * Client-credentials tokens shared by every instance: `SET {prefix}ct:{key}
 * sealed PX ttl`, so Redis drops each one with its token. No browser takes
 * part, so no cookie can carry the key: each token is sealed (see
 * `SealingKey`) with a key derived from `session.secrets`, which every
 * instance holds and a copy of Redis does not.
 */
export class RedisTokenCache implements TokenCache {
  readonly #redis: RedisClient & CacheScripts
  readonly #names: RedisKeys
  #keys: readonly SealingKey[]
  readonly #onUnreadable: RedisTokenCacheOptions['onUnreadable']

  constructor(options: RedisTokenCacheOptions) {
    const redis = options.client as RedisClient & Partial<CacheScripts>
    if (!redis.ghDropClientToken)
      redis.defineCommand('ghDropClientToken', { numberOfKeys: 1, lua: DROP_IF_SAME })
    if (!redis.ghSetClientToken)
      redis.defineCommand('ghSetClientToken', { numberOfKeys: 1, lua: SET_UNLESS_OUTLIVED })
    this.#redis = redis as RedisClient & CacheScripts
    this.#names = redisKeys(options.keyPrefix)
    this.#keys = clientTokenKeys(options.secrets)
    this.#onUnreadable = options.onUnreadable
  }

  /**
   * `session.secrets` rotated by a config reload: seal with the new first,
   * open with any, once the function returned is called (see `Stores.prepareSecrets`).
   */
  prepareSecrets(secrets: readonly string[]): () => void {
    const keys = clientTokenKeys(secrets)
    return () => {
      this.#keys = keys
    }
  }

  async get(key: string): Promise<CachedToken | undefined> {
    const value = await guarded(() => this.#redis.get(this.#names.clientToken(key)))
    if (value === null) return undefined
    const opened = SealingKey.openWith(this.#keys, context(key), value)
    if (!opened.ok) {
      this.#onUnreadable?.(opened.reason)
      return undefined
    }
    return JSON.parse(opened.text) as CachedToken
  }

  /**
   * Stores `token` unless the copy held outlives it: written by a holder
   * whose lock lapsed while its IdP answer was slow, an older token went
   * over the newer one the next holder stored, and every instance took it.
   * A copy that does not open here is replaced, as `get` counts it absent.
   */
  async set(key: string, token: CachedToken, ttlMs: number): Promise<void> {
    // PX must be a positive integer; a token with no time left is not worth storing.
    const px = Math.floor(ttlMs)
    if (px < 1) return
    const name = this.#names.clientToken(key)
    const held = await guarded(() => this.#redis.get(name))
    // '' is no sealed value: nothing held counts as unreadable.
    const unreadable = held === null || SealingKey.openWith(this.#keys, context(key), held).ok ? '' : held
    const sealed = this.#keys[0]!.seal(context(key), JSON.stringify(token))
    await guarded(() => this.#redis.ghSetClientToken(name, sealed, px, unreadable))
  }

  /**
   * The token is sealed with a random nonce, so Redis cannot compare
   * tokens: the value read is opened here, and the script deletes the key
   * only if it still holds that same sealed value, not one another
   * instance stored after this read.
   */
  async drop(key: string, accessToken: string): Promise<void> {
    const name = this.#names.clientToken(key)
    const value = await guarded(() => this.#redis.get(name))
    if (value === null) return
    const opened = SealingKey.openWith(this.#keys, context(key), value)
    // One that does not open counts as absent (`get`), and is replaced by the next fetch.
    if (!opened.ok || (JSON.parse(opened.text) as CachedToken).accessToken !== accessToken) return
    await guarded(() => this.#redis.ghDropClientToken(name, value))
  }

  /** The connection is shared and closed by its owner. */
  async close(): Promise<void> {}
}

/** Binds a sealed token to its cache entry, so one copied to another entry does not open. */
function context(key: string): string {
  return `client-token ${key}`
}
