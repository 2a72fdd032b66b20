import { createHash } from 'node:crypto'
import { type IndexedClaim, IndexHashes } from '../../src/crypto/derived-keys.js'
import { openField } from '../../src/session/sealed-fields.js'
import { SessionKey } from '../../src/session/session-key.js'
import type { SessionData, SessionRef } from '../../src/session/types.js'
import type { TokenSet } from '../../src/types.js'
import { SESSION_SECRET } from '../helpers/gateway.js'

/** A key of its own for each test id, the same every time it is asked for. */
export function keyFor(id: string): SessionKey {
  return SessionKey.fromCookie(createHash('sha256').update(id).digest('base64url'))!
}

/** The reference a request with the session's cookie would carry: `id` and its key. */
export function ref(id: string): SessionRef {
  return { id, key: keyFor(id) }
}

/** Alice's session created at `now`: 60 s idle, 1 h absolute, version 0. */
export function session(id: string, now: number, extra: Partial<SessionData> = {}): SessionData {
  return {
    id,
    key: keyFor(id),
    idp: 'default',
    sub: 'alice',
    sid: undefined,
    claims: { name: 'Alice' },
    tokens: { accessToken: 'A1', accessTokenExpiresAt: now + 60_000, refreshToken: 'R1', idToken: 'I1' },
    version: 0,
    createdAt: now,
    absoluteExpiresAt: now + 3_600_000,
    idleExpiresAt: now + 60_000,
    logoutHandle: 'h',
    ...extra,
  }
}

/** `session.secrets` for stores a test builds itself: the test gateway's. */
export const SECRETS: readonly string[] = [SESSION_SECRET]

/** The tokens of test session `id` as a store sealed them, opened with its key: for tests that read Redis directly. */
export function openTokens(id: string, sealed: string | null): TokenSet {
  if (sealed === null) throw new Error(`session ${id} has no tokens field`)
  return openField(ref(id), 'tokens', sealed)
}

const hashes = new IndexHashes(SECRETS)

/** The keyed hash of `claim` = `value` under the test secret. */
export function indexHash(claim: IndexedClaim, value: string): string {
  return hashes.current(claim, value)
}

/** The index key of `claim` = `value` without its prefix, as the Redis store names it. */
export function indexName(claim: IndexedClaim, value: string): string {
  return `${claim}:{${indexHash(claim, value)}}`
}
