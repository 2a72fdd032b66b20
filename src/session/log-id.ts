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
