import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { RefreshOutcome } from './user-tokens.js'

/**
 * A short, stable name for a session in logs: it lets an operator follow one
 * session's refreshes without the log holding the id, which is the key to the
 * session in the store.
 */
export function sessionLogId(id: string): string {
  return createHash('sha256').update(id).digest('base64url').slice(0, 10)
}

/** One line per redemption of a refresh token, never with a token in it. */
export function logRefresh(
  log: FastifyBaseLogger,
  outcome: RefreshOutcome,
  ms: number,
  sessionId: string,
  resource = '',
): void {
  const fields = { session: sessionLogId(sessionId), ms, ...(resource === '' ? {} : { resource }) }
  if (outcome === 'success') log.info(fields, 'access token refreshed')
  else if (outcome === 'invalid_grant')
    log.info(fields, 'refresh token refused (invalid_grant): session ended')
  else if (outcome === 'invalid_target')
    log.info(fields, 'resource refused (invalid_target): this route answers 403, the session stays')
  else log.warn(fields, 'access token refresh failed: identity provider unavailable')
}
