import { BoundedMap } from '../bounded-map.js'
import { guarded, type RedisClient } from '../redis/connection.js'
import { type RedisKeys, redisKeys } from '../redis/keys.js'
import type { ReplayCache, ReplayClaim, ReplayKept } from './types.js'

interface Noted {
  readonly until: number
  readonly as: 'held' | ReplayKept
}

/** One process's replay cache, bounded so a flood of ids cannot grow it without limit. */
export class MemoryReplayCache implements ReplayCache {
  readonly #seen: BoundedMap<string, Noted>
  readonly #now: () => number

  constructor(now: () => number = Date.now, max = 100_000) {
    this.#now = now
    this.#seen = new BoundedMap(max)
  }

  async claim(key: string, holdMs: number): Promise<ReplayClaim> {
    const now = this.#now()
    const noted = this.#seen.get(key)
    if (noted !== undefined && noted.until > now) return noted.as
    this.#seen.set(key, { until: now + holdMs, as: 'held' })
    return 'claimed'
  }

  async forget(key: string): Promise<void> {
    if (this.#seen.get(key)?.as === 'held') this.#seen.delete(key)
  }

  async keep(key: string, ttlMs: number, as: ReplayKept = 'done'): Promise<void> {
    this.#seen.set(key, { until: this.#now() + ttlMs, as })
  }
}

/**
 * The value of a held key; a kept one is `done`. A release before holds
 * were told apart wrote `1` for both, which is read as done: a rolling
 * upgrade refuses such a repeat as that release did.
 */
const HELD = 'held'
const DONE = 'done'
const OWED = 'owed'

/** Returns what the key holds, or holds it for ARGV[2] ms and returns false. KEYS: the key. ARGV: held, holdMs. */
const CLAIM = `
local noted = redis.call('GET', KEYS[1])
if noted then return noted end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`

/** Deletes the key iff it is only held, never once kept as done. KEYS: the key. ARGV: held. */
const FORGET = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

interface ReplayScripts {
  ghClaimSeen(key: string, held: string, holdMs: number): Promise<string | null>
  ghForgetSeen(key: string, held: string): Promise<number>
}

/**
 * Shared by every instance: `{prefix}seen:<key>` is `held` while one
 * instance carries a use out and `done` (or `owed`) once it has. Each step is one
 * script on the one key, so exactly one instance claims it, and a hold
 * that lapsed and was claimed again cannot, when that use fails, forget
 * the other's done.
 */
export class RedisReplayCache implements ReplayCache {
  readonly #redis: RedisClient & ReplayScripts
  readonly #keys: RedisKeys

  constructor(options: { client: RedisClient; keyPrefix: string }) {
    const redis = options.client as RedisClient & Partial<ReplayScripts>
    if (!redis.ghClaimSeen) redis.defineCommand('ghClaimSeen', { numberOfKeys: 1, lua: CLAIM })
    if (!redis.ghForgetSeen) redis.defineCommand('ghForgetSeen', { numberOfKeys: 1, lua: FORGET })
    this.#redis = redis as RedisClient & ReplayScripts
    this.#keys = redisKeys(options.keyPrefix)
  }

  async claim(key: string, holdMs: number): Promise<ReplayClaim> {
    const noted = await guarded(() =>
      this.#redis.ghClaimSeen(this.#keys.seen(key), HELD, Math.max(1, Math.floor(holdMs))),
    )
    if (noted === null) return 'claimed'
    return noted === HELD ? 'held' : noted === OWED ? 'owed' : 'done'
  }

  async forget(key: string): Promise<void> {
    await guarded(() => this.#redis.ghForgetSeen(this.#keys.seen(key), HELD))
  }

  async keep(key: string, ttlMs: number, as: ReplayKept = DONE): Promise<void> {
    await guarded(() => this.#redis.set(this.#keys.seen(key), as, 'PX', Math.max(1, Math.floor(ttlMs))))
  }
}
