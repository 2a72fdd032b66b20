import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'

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
  outcome: 'success' | 'invalid_grant' | 'unavailable',
  ms: number,
  sessionId: string,
): void {
  const fields = { session: sessionLogId(sessionId), ms }
  if (outcome === 'success') log.info(fields, 'access token refreshed')
  else if (outcome === 'invalid_grant')
    log.info(fields, 'refresh token refused (invalid_grant): session ended')
  else log.warn(fields, 'access token refresh failed: identity provider unavailable')
}
