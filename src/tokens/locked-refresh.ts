import { type GatehouseError, gatehouseError, isGatehouseError } from '../errors.js'
import type { SessionData, SessionRef } from '../session/types.js'
import { waited } from '../tracing/spans.js'
import type { TokenAudience } from '../types.js'
import { lateWriteRefusal } from './late-writes.js'
import { type RedemptionDeps, redeem } from './redemption.js'
import { FRESH, goneMeanwhile } from './rotated-writes.js'
import type { LockService } from './types.js'

/** What the lock-and-redeem step needs of the `UserTokens` that runs it. */
export interface LockedRefreshDeps extends RedemptionDeps {
  readonly locks: LockService
  /** Initial lifetime of the cluster refresh lock, ms; it is renewed while held. */
  readonly lockTtl: number
  /** Longest wait on another instance's refresh, ms. */
  readonly refreshWait: number
}

/** What one flight leaves behind: the session after it, and the audience the IdP refused, if any. */
export interface FlightResult {
  readonly session: SessionData
  readonly refused?: { readonly key: string; readonly error: GatehouseError }
}

/** What a flight refuses for its audience only, so that joiners for another do not take it as theirs. */
const refusedForAudience = new Set([
  'GATEHOUSE_ERR_RESOURCE_REFUSED',
  'GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED',
  'GATEHOUSE_ERR_TOKEN_EXCHANGE_WRONG_TOKEN_TYPE',
])

/**
 * One flight of `scope`: takes the cluster lock and redeems under it, or,
 * when another instance holds it, waits for its release and re-reads the
 * session the holder stored into. It never redeems the refresh token
 * without the lock: with rotation (RFC 9700 §4.14.2) a second redemption
 * would revoke the whole grant.
 *
 * `ref` carries the key of the request that started the flight. Every
 * request of a session carries the same key, whichever instance it
 * reaches, so a waiter re-reads with its own request's key too.
 */
export async function refreshUnderLock(
  deps: LockedRefreshDeps,
  ref: SessionRef,
  seen: number,
  scope: string,
  audience: TokenAudience | undefined,
  due: (session: SessionData) => boolean,
): Promise<FlightResult> {
  // This process awaits the answer to the session's refresh that timed
  // out, or is storing it: the IdP is being asked already, so the answer
  // is given at once, as in the session's back-off, not after a wait on
  // the lock. Asked before the lock, not only when it is taken: a store
  // outage longer than the lock's life lets it lapse while the answer's
  // write is retried, and taking it again here would redeem the spent
  // refresh token. Another instance waits for it as for any refresh in flight.
  // So are tokens the store refused (`storeLater`): their refresh token
  // is the live one, and the session's record still holds the spent one.
  const pending = deps.lateWrites.get(scope)
  if (pending !== undefined)
    throw (
      deps.unavailable.backingOff(ref.id, audience?.exchange ? audience.key : undefined) ??
      lateWriteRefusal(pending)
    )
  const key = `refresh:${scope}`
  const lock = await deps.locks.tryAcquire(key, deps.lockTtl)
  if (!lock) {
    deps.observer?.joined?.()
    const how = await waited('lock', () => deps.locks.waitForRelease(key, deps.refreshWait))
    const after = await deps.store.get(ref, deps.now(), FRESH)
    if (!after) throw goneMeanwhile(ref.id)
    // Something was stored since the caller read the session: our token,
    // or another audience's, in which case the caller goes round again.
    // So it does after a holder that asked the IdP nothing: one whose own
    // token another instance had refreshed, while ours, of another
    // audience, is still due; the lock is one per session, whichever
    // audience its holder was for. And after a holder that was answered:
    // the caller may have read the session after the holder's write and
    // before its release, so the version it saw is already the holder's
    // (an exchange storm answered 503 so with the IdP up). And after a
    // lock that was free by the time this caller looked, as if it had
    // come a moment later, or given back without word of how (`unheard`):
    // nothing says its holder failed.
    if (!due(after) || after.version !== seen || how !== 'released') return { session: after }
    // The holder failed; its error is not ours to repeat, and redeeming
    // the refresh token ourselves could replay it.
    throw gatehouseError('GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE')
  }
  let how: 'idle' | 'answered' | 'released' = 'released'
  try {
    // Re-read under the lock: another instance may have refreshed between
    // our read and our acquire, and its refresh token is the live one.
    const current = await deps.store.get(ref, deps.now(), FRESH)
    if (!current) throw goneMeanwhile(ref.id)
    if (!due(current)) {
      how = 'idle'
      return { session: current }
    }
    try {
      const session = await redeem(deps, current, audience)
      how = 'answered'
      return { session }
    } catch (err) {
      // Refused for this audience only: joiners waiting for another one
      // must not take the refusal as theirs.
      if (isGatehouseError(err) && refusedForAudience.has(err.code)) {
        how = 'answered'
        return { session: current, refused: { key: audience?.key ?? '', error: err } }
      }
      throw err
    }
  } finally {
    // A refresh whose answer is still on its way keeps the lock until the
    // answer is stored: a redemption before then would present the spent
    // refresh token. Waiters meanwhile wait as for any slow refresh.
    const late = deps.lateWrites.get(scope)?.stored
    if (late === undefined) await lock.release(how)
    else void late.finally(() => lock.release().catch(() => {}))
  }
}
