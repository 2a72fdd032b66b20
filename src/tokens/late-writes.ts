import { type GatehouseError, gatehouseError } from '../errors.js'
import type { LateAnswer } from '../oidc/late-answer.js'
import type { SessionData } from '../session/types.js'
import type { TokenAudience, TokenSet } from '../types.js'
import type { RefreshObserver } from './refresh-observer.js'
import type { RefreshOutcome } from './refresh-outcome.js'
import { LATE_WRITE_BUDGET, type RotatedWrites } from './rotated-writes.js'
import { merged } from './token-set.js'
import type { UnavailableLimit } from './unavailable-limit.js'

/**
 * Per refresh scope (the session id, or with per-audience coordination the
 * session's audience: `refreshScope`), the store of tokens the IdP issued
 * and no request waits on any more, while it lasts: a late refresh answer
 * awaited (`answer`), or rotated tokens the store refused within the
 * lock's lifetime, offered to it again (`store`).
 */
export type LateWrites = Map<string, LateWrite>

export interface LateWrite {
  readonly stored: Promise<void>
  readonly awaiting: 'answer' | 'store'
}

/** What storing tokens no request waits on needs of the `UserTokens` that redeemed them. */
export interface LateWriteDeps {
  readonly lateWrites: LateWrites
  readonly writes: RotatedWrites
  readonly unavailable: UnavailableLimit
  readonly observer: RefreshObserver | undefined
  readonly now: () => number
}

/** Why a session's refresh is not tried while the answer to its last is awaited (late-answer.ts). */
const LATE_ANSWER_AWAITED =
  "The identity provider has not yet answered this session's last refresh, which timed out; its answer is still awaited (oidc.lateAnswerWait), and the session stays. Retry later."

/** Why a session's refresh is not tried while its rotated tokens wait for the store to take them. */
const ROTATED_UNSTORED =
  "The session store refused this session's new tokens from the identity provider. They are held by this instance and stored as soon as the store takes writes again; the session stays. Retry later."

/** The answer to a refresh of a scope whose last tokens are still being stored (`pending`). */
export function lateWriteRefusal(pending: LateWrite): GatehouseError {
  return pending.awaiting === 'answer'
    ? gatehouseError('GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE', LATE_ANSWER_AWAITED)
    : gatehouseError('GATEHOUSE_ERR_STORE_UNAVAILABLE', ROTATED_UNSTORED)
}

/**
 * Offers rotated tokens (an answer's, or a refused 200's refresh token)
 * the store refused for the whole of the lock's lifetime (a full Redis under `noeviction` answers every write `OOM`
 * until an operator acts; an outage can outlast the lock) to it again,
 * for `LATE_WRITE_BUDGET`, as a late answer's are: they exist nowhere
 * else, and giving them up left the session with the spent refresh
 * token, whose next redemption the IdP took as a replay and revoked the
 * grant for (RFC 9700 §4.14.2). The session's lock is held until then
 * (`refreshUnderLock`), and this instance answers the session's refreshes
 * 503 at once meanwhile; the compare-and-set keeps any newer write.
 */
export function storeLater(deps: LateWriteDeps, scope: string, current: SessionData, tokens: TokenSet): void {
  const stored: Promise<void> = deps.writes
    .store(current, tokens, LATE_WRITE_BUDGET)
    .then(
      () => {},
      () => {},
    )
    .finally(() => {
      if (deps.lateWrites.get(scope)?.stored === stored) deps.lateWrites.delete(scope)
    })
  deps.lateWrites.set(scope, { stored, awaiting: 'store' })
}

/**
 * Stores the answer to a refresh that timed out when it comes
 * (late-answer.ts), as a refresh in time would have been stored; the
 * session's lock is held until then (`refreshUnderLock`). An answer that
 * is a refusal stores nothing but a rotated refresh token it carried: the
 * next redemption meets the refusal itself.
 */
export function awaitLate(
  deps: LateWriteDeps,
  scope: string,
  current: SessionData,
  audience: TokenAudience | undefined,
  late: Promise<LateAnswer<TokenSet>>,
  started: number,
): void {
  const stored = late
    .then(async ({ tokens, rotated }) => {
      const told = (outcome: RefreshOutcome) =>
        deps.observer?.refreshed?.(
          outcome,
          deps.now() - started,
          audience?.label ?? '',
          current.id,
          undefined,
          current.idp,
        )
      if (tokens === undefined) {
        told('late_lost')
        return deps.writes.keep(current, rotated, LATE_WRITE_BUDGET)
      }
      // A session gone since (logged out, ended) has nothing to store
      // into; a newer write (the lock lost) is kept over this one.
      const stored = await deps.writes
        .store(current, merged(current.tokens, audience, tokens), LATE_WRITE_BUDGET)
        .catch(() => 'failed' as const)
      if (stored !== 'updated') return told('late_lost')
      deps.unavailable.clear(current.id)
      told('late_success')
    })
    // The request that asked has had its answer.
    .catch(() => {})
    .finally(() => {
      if (deps.lateWrites.get(scope)?.stored === stored) deps.lateWrites.delete(scope)
    })
  deps.lateWrites.set(scope, { stored, awaiting: 'answer' })
}
