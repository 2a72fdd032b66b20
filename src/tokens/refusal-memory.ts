import { BoundedMap } from '../bounded-map.js'
import { type GatehouseError, gatehouseError } from '../errors.js'

/**
 * How long a definite refusal of a route's token (an exchange's, a
 * client-credentials token's: the `route_refused` verdict) is answered
 * again without asking the IdP: 30 s.
 *
 * The IdP gives the same answer to the same request until someone changes
 * something at the IdP (consent, the client's allowed audiences or scopes)
 * or in the config; each request asking again cost an IdP call, 19 for 200
 * parallel requests of one session and one per request after, so a client
 * could make the gateway hammer the IdP. 30 s is at most two calls a
 * minute per route (and session), and a fix made at the IdP is seen within
 * 30 s. A reload that changes the route's ask changes the key, and an
 * exchange's subject token that changes (a refresh) is asked for at once.
 */
export const REFUSAL_MEMORY = 30_000 // 30 s

/**
 * Refusals remembered at once; past it the least recently noted is
 * forgotten, and its next request asks the IdP again. Keys are a session
 * and a configured route (exchanges) or a configured route (client
 * tokens): a client cannot make more without signing in again.
 */
const MAX_REMEMBERED = 100_000

interface Refusal {
  /** The refusal's code, message and reason, without the IdP's answer it came from. */
  readonly error: GatehouseError
  /** What the refusal was for: the subject token's fingerprint, or '' . */
  readonly holds: string
  readonly until: number
}

/**
 * The IdP's definite refusals of route tokens, per token asked for, for
 * REFUSAL_MEMORY: concurrent and repeated requests get the same answer
 * without an IdP call. Per process, as the outages' back-off
 * (`UnavailableLimit`): with N replicas, at most N calls per refusal.
 */
export class RefusalMemory {
  readonly #now: () => number
  readonly #ms: number
  readonly #refused = new BoundedMap<string, Refusal>(MAX_REMEMBERED)

  constructor(now: () => number, ms = REFUSAL_MEMORY) {
    this.#now = now
    this.#ms = ms
  }

  /**
   * Notes `error`, the IdP's refusal of the token `key` names, asked for
   * with `holds`; returns the copy kept, which later answers name as their
   * `cause`. Only its code, message and reason are kept: the error itself
   * holds the IdP's answer (its Response, body and stack), about 8 KB, and
   * an entry is dropped only when read again or evicted, so a full map of
   * them held about 840 MB.
   */
  refused(key: string, error: GatehouseError, holds = ''): GatehouseError {
    const kept = Object.assign(gatehouseError(error.code, error.message), {
      ...(error.reason === undefined ? {} : { reason: error.reason }),
    })
    this.#refused.set(key, { error: kept, holds, until: this.#now() + this.#ms })
    return kept
  }

  /**
   * While a refusal of `key`, asked for with the same `holds`, is
   * remembered, the answer for a request that would ask again: the same
   * code and message, with a `reason` saying the IdP was not asked; the
   * refusal's kept copy is its `cause`.
   */
  kept(key: string, holds = ''): GatehouseError | undefined {
    const refusal = this.#refused.get(key)
    if (refusal === undefined) return undefined
    if (refusal.holds !== holds || this.#now() >= refusal.until) {
      this.#refused.delete(key)
      return undefined
    }
    return Object.assign(gatehouseError(refusal.error.code, refusal.error.message, refusal.error), {
      reason: `identity provider not asked: it refused the same token less than ${this.#ms / 1_000} s ago${refusal.error.reason ? ` (${refusal.error.reason})` : ''}`,
    })
  }
}
