import { BoundedMap } from '../bounded-map.js'
import { tokenFingerprint } from './refresh-cooldown.js'

/**
 * Refused tokens remembered at once; past it the least recently noted is
 * forgotten. Each one noted forced a replacement, which the cool-down
 * (`tokens.retryCooldown`) bounds to one a minute per client token, so a
 * client token that lives an hour leaves at most 60 here per configured
 * scope set.
 */
const MAX_REMEMBERED = 10_000

/**
 * Per client token (its cache key), the access tokens an upstream refused
 * (`ClientTokens.replaceRefused`), each until it expires, by fingerprint:
 * a read of the shared copy, or a renewal's fall-back on the held token,
 * that began before the refusal must not bring the refused token back.
 * Without it, a request during the replacement read the refused token from
 * the shared copy before its drop, and put it back in the local copy, where
 * every request after it took it again.
 */
export class RefusedTokens {
  readonly #now: () => number
  readonly #refused = new BoundedMap<string, number>(MAX_REMEMBERED)

  constructor(now: () => number) {
    this.#now = now
  }

  /** Notes `accessToken` of `key` as refused until `expiresAt` (epoch ms). */
  refused(key: string, accessToken: string, expiresAt: number): void {
    this.#refused.set(entryOf(key, accessToken), expiresAt)
  }

  /** Whether `accessToken` of `key` was refused, and has not yet expired. */
  has(key: string, accessToken: string): boolean {
    // No refusal noted, the common case: no fingerprint to take.
    if (this.#refused.size === 0) return false
    const entry = entryOf(key, accessToken)
    const until = this.#refused.get(entry)
    if (until === undefined) return false
    if (until > this.#now()) return true
    this.#refused.delete(entry)
    return false
  }
}

/** A newline is in no cache key (`cacheKey` quotes the client id) and in no fingerprint. */
function entryOf(key: string, accessToken: string): string {
  return `${key}\n${tokenFingerprint(accessToken)}`
}
