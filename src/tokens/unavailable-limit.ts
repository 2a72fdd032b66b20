import { BoundedMap } from '../bounded-map.js'

/** `tokens.unavailableLimit`'s default: five minutes of 503s, then a 401 that sends the user to sign in. */
export const DEFAULT_UNAVAILABLE_LIMIT = 300_000 // 5 min

/**
 * Sessions followed at once; past it the one that failed least recently
 * is forgotten, and its count starts again at its next failure.
 */
const MAX_FOLLOWED = 100_000

/**
 * Bounds how long a session may see nothing but "identity provider
 * unavailable" from its refreshes: an IdP that answers a dead refresh token
 * with a 5xx, or an outage that outlives the session's usefulness, must end
 * in a 401 that sends the user to sign in, not a 503 for hours. Counted per
 * instance, from the session's first failed refresh since its last success.
 */
export class UnavailableLimit {
  readonly #limit: number
  readonly #now: () => number
  readonly #since = new BoundedMap<string, number>(MAX_FOLLOWED)

  constructor(limitMs: number, now: () => number) {
    this.#limit = limitMs
    this.#now = now
  }

  /** Notes a refresh of `sessionId` that found the IdP unavailable; true once that has lasted past the limit. */
  failed(sessionId: string): boolean {
    const now = this.#now()
    const since = this.#since.get(sessionId)
    if (since === undefined) {
      this.#since.set(sessionId, now)
      return false
    }
    return now - since >= this.#limit
  }

  /** The session refreshed, or ended: its count is over. */
  clear(sessionId: string): void {
    this.#since.delete(sessionId)
  }
}
