import { createHash } from 'node:crypto'
import { type GatehouseError, gatehouseError } from '../errors.js'

/**
 * A short, stable name for a session in logs: it lets an operator follow one
 * session's refreshes without the log holding the id, which is the key to the
 * session in the store.
 */
export function sessionLogId(id: string): string {
  return createHash('sha256').update(id).digest('base64url').slice(0, 10)
}

/**
 * `GATEHOUSE_ERR_SESSION_EXPIRED` for a session the gateway ends itself (no
 * refresh token, its record gone meanwhile): the error handler's line then
 * says which session, as the IdP's refusals' lines do.
 */
export function sessionEnded(sessionId: string, detail?: string): GatehouseError {
  return Object.assign(gatehouseError('GATEHOUSE_ERR_SESSION_EXPIRED', detail), {
    session: sessionLogId(sessionId),
  })
}

/**
 * Marks `err`, a `GATEHOUSE_ERR_SESSION_EXPIRED` for a session whose record
 * was already gone when the request that used it ended (a logout, a sign-in
 * over it, a back-channel logout, an eviction, elsewhere or in this
 * browser), so that its answer leaves the session cookie alone: whatever
 * ended the session meanwhile may have given the browser a new session's
 * cookie, and clearing the name clears that (`endedElsewhere`).
 */
export function endedElsewhere<E extends GatehouseError>(err: E): E {
  return Object.assign(err, { endedElsewhere: true })
}
