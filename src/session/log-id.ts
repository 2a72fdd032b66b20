import { createHash } from 'node:crypto'

/**
 * A short, stable name for a session in logs: it lets an operator follow one
 * session's refreshes without the log holding the id, which is the key to the
 * session in the store.
 */
export function sessionLogId(id: string): string {
  return createHash('sha256').update(id).digest('base64url').slice(0, 10)
}
