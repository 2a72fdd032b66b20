import { performance } from 'node:perf_hooks'
import { isGatehouseError } from '../errors.js'
import { type Rotated, UNKEPT } from '../oidc/rotated.js'
import { endedElsewhere, sessionEnded } from '../session/log-id.js'
import type { SessionData, SessionStore, UpdateResult } from '../session/types.js'
import type { TokenSet } from '../types.js'

/** Why a session whose record vanished during a refresh ended: a logout elsewhere, or its expiry. */
export const GONE_MEANWHILE =
  'The session ended while this request used it: signed out elsewhere, or expired.'

/**
 * The 401 of a request whose session's record vanished while it used it.
 * Its answer leaves the cookie alone: the sign-in that ended the session
 * (session fixation) may have set this browser a new session's cookie
 * meanwhile, and a cleared name is cleared whatever its value. The
 * browser's next request with a dead cookie clears it (`Sessions.current`).
 */
export function goneMeanwhile(sessionId: string) {
  return endedElsewhere(sessionEnded(sessionId, GONE_MEANWHILE))
}

/**
 * Every read on the refresh path: never decide to redeem on a per-instance
 * copy. Nor slide the idle expiry: an HTTP call has slid it already with
 * its own read, and the WebSocket session watch refreshes for a socket
 * that may be silent, which must not keep the session alive.
 */
export const FRESH = { fresh: true, touch: false } as const

/**
 * How long the tokens of a late answer (late-answer.ts) are offered to a
 * store that is away, ms. No request waits on that write, and a store
 * outage can outlast the refresh lock (a Sentinel's default
 * `down-after-milliseconds` alone is 30 s): giving the rotated refresh
 * token up with the lock would make the session's next redemption a
 * replay. The compare-and-set still keeps any newer write over it.
 */
export const LATE_WRITE_BUDGET = 300_000 // 5 min

export interface RotatedWritesOptions {
  readonly store: SessionStore
  /** The refresh lock's lifetime, ms: how long a write of rotated tokens may be retried. */
  readonly lockTtl: number
  readonly now: () => number
}

/**
 * Writes the tokens a redemption brought into the session, by versioned
 * compare-and-set, under the refresh lock the caller holds. Rotated tokens
 * exist nowhere else, so a write is retried while the store is away.
 */
export class RotatedWrites {
  readonly #store: SessionStore
  readonly #lockTtl: number
  readonly #now: () => number

  constructor(options: RotatedWritesOptions) {
    this.#store = options.store
    this.#lockTtl = options.lockTtl
    this.#now = options.now
  }

  /**
   * The refresh token of a 200 the gateway refused (rotated.ts), stored in
   * place of the spent one, with the tokens the session had: the next
   * redemption then uses it instead of replaying the spent one, which would
   * revoke the grant. One too large to keep (`UNKEPT`) replaces it with
   * none, for the same reason: the session then lasts as long as its
   * access token. Best effort: the request fails either way.
   */
  async keep(current: SessionData, refreshToken: Rotated | undefined, budgetMs?: number): Promise<void> {
    const tokens = keeping(current, refreshToken)
    if (tokens === undefined) return
    await this.write(current, tokens, budgetMs).catch(() => {})
  }

  /** The new tokens by compare-and-set on the version `current` was read at; the session after it. */
  async write(current: SessionData, tokens: TokenSet, budgetMs?: number): Promise<SessionData> {
    const result = await this.store(current, tokens, budgetMs)
    if (result === 'missing') throw goneMeanwhile(current.id)
    if (result === 'stale') {
      // Only reachable without coordination, or if the lock was lost: the
      // stored tokens are newer than ours, so keep them and use them.
      const stored = await this.#store.get(current, this.#now(), FRESH)
      if (!stored) throw goneMeanwhile(current.id)
      return stored
    }
    return { ...current, tokens, version: current.version + 1 }
  }

  /**
   * Stores tokens the IdP has just rotated. They exist nowhere else: if
   * the store is away (a primary failing over), giving up would leave the
   * session with the consumed refresh token, and its next redemption would
   * revoke the grant (RFC 9700 §4.14.2). So the write is retried while the
   * lock is still ours to renew, bounded by its lifetime, or by
   * `budgetMs` when no request waits on it (`LATE_WRITE_BUDGET`); the
   * versioned compare-and-set makes a retry of a write that did land
   * answer `stale`.
   */
  async store(current: SessionData, tokens: TokenSet, budgetMs = this.#lockTtl): Promise<UpdateResult> {
    const deadline = performance.now() + Math.max(budgetMs, this.#lockTtl)
    for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
      try {
        return await this.#store.updateTokens(current, current.version, tokens)
      } catch (err) {
        const unavailable = isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE'
        if (!unavailable || performance.now() + delay >= deadline) throw err
        // Unref'd: a write retried through an outage must not hold a closing process open.
        await new Promise((resolve) => setTimeout(resolve, delay).unref())
      }
    }
  }
}

/**
 * The session's tokens with the refresh token of a 200 the gateway refused
 * (rotated.ts) in place of the spent one, with the expiry that answer gave
 * it, or with none when it was too large to keep (`UNKEPT`); undefined
 * when the answer carried none.
 */
export function keeping(current: SessionData, rotated: Rotated | undefined): TokenSet | undefined {
  if (rotated === undefined) return undefined
  // The spent token's expiry is not the rotated one's, which the IdP gave
  // a lifetime of its own: kept, it ended the session early and let a
  // logout elsewhere revoke the grant this token still holds (weighGrant).
  // The answer that issued the rotated one says its lifetime, if it says
  // one (rotatedIn); else it is unknown, and the session ends when a
  // redemption is refused instead.
  const { refreshToken: _spent, refreshTokenExpiresAt: _expires, ...held } = current.tokens
  if (rotated === UNKEPT) return held
  const { refreshToken, expiresAt } = rotated
  return expiresAt === undefined
    ? { ...held, refreshToken }
    : { ...held, refreshToken, refreshTokenExpiresAt: expiresAt }
}
