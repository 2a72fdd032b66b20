import { BoundedMap } from '../bounded-map.js'
import {
  type ErrorCode,
  type GatehouseError,
  gatehouseError,
  retryAfterFor,
  retryAfterOf,
  withRetryAfter,
} from '../errors.js'

/** `tokens.unavailableLimit`'s default: five minutes of 503s, then a 401 that sends the user to sign in. */
export const DEFAULT_UNAVAILABLE_LIMIT = 300_000 // 5 min

/**
 * Sessions followed at once; past it the one that failed least recently
 * is forgotten: its count starts again at its next failure, and its
 * back-off is over.
 */
const MAX_FOLLOWED = 100_000

interface Failing {
  /** The first failed refresh since the last success; undefined while only exchanges failed. */
  readonly since: number | undefined
  /** The code the last failure answered, `undefined` for one that gave no `Retry-After`. */
  readonly answered: ErrorCode | undefined
  /** When the `Retry-After` that answer gave is over, ms. */
  readonly until: number
}

/**
 * Follows the sessions whose calls to the IdP find it unavailable (or
 * refusing the gateway's DPoP proof), and bounds them twice.
 *
 * In rate: a session whose client was told to come back after `Retry-After`
 * makes no IdP call before then, however many requests it sends. Each call
 * would present the same token again: against an IdP that logs every token
 * it refuses as a security event (Glewlwyd ships a fail2ban filter matching
 * that line, and fail2ban bans after five), one user's requests would get
 * the gateway's address banned, and everyone's sign-in with it; an IdP
 * recovering from an outage would meet every session's every request at
 * once. Per process: with N replicas the IdP sees at most N calls per
 * session per `Retry-After`.
 *
 * In time: an IdP that answers a dead refresh token with a 5xx, or an
 * outage that outlives the session's usefulness, must end in a 401 that
 * sends the user to sign in, not a 503 for hours. Counted per instance,
 * from the session's first failed refresh since its last success, and
 * decided at a refresh: a session backing off ends at its next one.
 */
export class UnavailableLimit {
  readonly #limit: number
  readonly #now: () => number
  readonly #failing = new BoundedMap<string, Failing>(MAX_FOLLOWED)

  constructor(limitMs: number, now: () => number) {
    this.#limit = limitMs
    this.#now = now
  }

  /**
   * Notes a refresh of `sessionId` that found the IdP unavailable and
   * answered `answered`, whose `Retry-After` it then waits out; true once
   * that has lasted past the limit (`limitMs`, the caller's config's, when
   * one instance serves the configs a reload swaps in). `answered` is told
   * the wait kept (`#backOff`), so the client hears the same.
   */
  failed(sessionId: string, answered: GatehouseError | undefined, limitMs = this.#limit): boolean {
    const now = this.#now()
    const since = this.#failing.get(sessionId)?.since
    this.#backOff(sessionId, since ?? now, answered, now, limitMs)
    return since !== undefined && now - since >= limitMs
  }

  /**
   * Notes a token exchange of `sessionId` for the audience `audienceKey`
   * that found the IdP unavailable: its `Retry-After` is waited out as a
   * refresh's is, by that audience's exchanges alone. An exchange presents
   * the subject token, not the refresh token, and an IdP may limit one
   * grant and not the other: held back with it, the session's refresh and
   * its other routes got the exchange's 503 for as long as the IdP asked.
   * Only a refresh's failure counts towards the limit.
   */
  exchangeFailed(
    sessionId: string,
    audienceKey: string,
    answered: GatehouseError,
    limitMs = this.#limit,
  ): void {
    this.#backOff(exchangeKey(sessionId, audienceKey), undefined, answered, this.#now(), limitMs)
  }

  /**
   * While the `Retry-After` of the last failure of the session's refreshes
   * (or of its exchanges for `audienceKey`) runs, the answer for every
   * request that would make the same call meanwhile (`notAsked`).
   */
  backingOff(sessionId: string, audienceKey?: string): GatehouseError | undefined {
    const failing = this.#failing.get(
      audienceKey === undefined ? sessionId : exchangeKey(sessionId, audienceKey),
    )
    const now = this.#now()
    if (failing?.answered === undefined || now >= failing.until) return undefined
    return notAsked(failing.answered, failing.until - now)
  }

  /** The session refreshed, or ended: its count and its back-off are over. */
  clear(sessionId: string): void {
    this.#failing.delete(sessionId)
  }

  /**
   * The IdP's `Retry-After` (bounded in `translate.ts`), or the
   * catalogue's: but never past the point where the session's count would
   * end it (`since` + limit), so that a long Retry-After does not keep the
   * user on 503s past `tokens.unavailableLimit`: the attempt that decides
   * is made then, the IdP's wish notwithstanding, once per session. The
   * catalogue value stays the least wait, as before the IdP could ask.
   */
  #backOff(
    sessionId: string,
    since: number | undefined,
    answered: GatehouseError | undefined,
    now: number,
    limitMs: number,
  ): void {
    const least = answered === undefined ? undefined : retryAfterOf(answered.code)
    if (answered === undefined || least === undefined) {
      this.#failing.set(sessionId, { since, answered: undefined, until: now })
      return
    }
    const left = Math.ceil((limitMs - (now - (since ?? now))) / 1_000)
    const seconds = Math.max(least, Math.min(retryAfterFor(answered) ?? least, left))
    withRetryAfter(answered, seconds)
    this.#failing.set(sessionId, { since, answered: answered.code, until: now + seconds * 1_000 })
  }
}

/** Where an audience's exchanges wait: no session id holds a line break. */
function exchangeKey(sessionId: string, audienceKey: string): string {
  return `${sessionId}\n${audienceKey}`
}

/**
 * The answer to a request kept from the IdP while a failure's `Retry-After`
 * runs: the code that failure answered, the wait that is left of it (`ms`;
 * at least a second, so never a `Retry-After: 0` that invites a retry at
 * once), and a log `cause` saying the IdP was not asked, so an operator
 * can tell these 503s from the attempts.
 */
export function notAsked(answered: ErrorCode, ms: number): GatehouseError {
  return Object.assign(withRetryAfter(gatehouseError(answered), Math.max(1, ms / 1_000)), {
    reason: 'identity provider not asked: the last call for the same token failed less than Retry-After ago',
  })
}
