/** What the memory measurements share: a session record as a login makes it, and a settled heap. */
import { randomBytes } from 'node:crypto'
import type { SessionData, TokenSet } from '../src/session/types.js'

/** A session for user `i`, with ids, handles and claims of its own and the given tokens. */
export function sessionRecord(i: number, now: number, tokens: TokenSet): SessionData {
  const sub = `user-${i}-${randomBytes(6).toString('hex')}`
  return {
    id: randomBytes(32).toString('base64url'),
    sub,
    sid: randomBytes(16).toString('base64url'),
    // What the dev IdP puts in an ID token beyond the protocol claims.
    claims: { sub, name: `User ${i}`, email: `user${i}@example.com`, email_verified: true },
    tokens,
    version: 0,
    createdAt: now,
    absoluteExpiresAt: now + 12 * 3_600_000,
    idleExpiresAt: now + 30 * 60_000,
    logoutHandle: randomBytes(16).toString('base64url'),
  }
}

/** Heap in use after two full collections; needs `--expose-gc`. */
export function settledHeap(): number {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run with --expose-gc')
  gc()
  gc()
  return process.memoryUsage().heapUsed
}
