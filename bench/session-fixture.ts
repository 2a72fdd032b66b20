import { randomBytes } from 'node:crypto'
import { SessionKey } from '../src/session/session-key.js'
import type { SessionData } from '../src/session/types.js'
import type { TokenSet } from '../src/types.js'

/**
 * The sessions the memory figures store. The claims come in two shapes:
 * `id-token` is what the dev IdP puts in an ID token beyond the protocol
 * claims; `userinfo` is a full profile merged from userinfo, about what
 * Google or Entra ID return for `openid profile email`.
 */
export type ClaimsShape = 'id-token' | 'userinfo'

export function claimsOf(shape: ClaimsShape, sub: string, i: number): Record<string, unknown> {
  const base = { sub, name: `User ${i}`, email: `user${i}@example.com`, email_verified: true }
  if (shape === 'id-token') return base
  return {
    ...base,
    iss: 'https://accounts.example.com',
    given_name: 'User',
    family_name: `Number ${i}`,
    preferred_username: `user${i}@example.com`,
    picture: `https://lh3.googleusercontent.com/a/ACg8ocK${String(i).padStart(8, '0')}dW5pcXVlLXBpY3R1cmUtaWQ=s96-c`,
    locale: 'en-GB',
  }
}

/** `session.secrets` of the Redis stores the figures fill. */
export const BENCH_SECRETS: readonly string[] = ['a-bench-session-secret-of-at-least-32-characters']

/** Token strings of typical sizes, shared by every session so the figures exclude them. */
export const TOKENS: TokenSet = {
  accessToken: 'a'.repeat(900),
  accessTokenExpiresAt: Date.now() + 60_000,
  refreshToken: 'r'.repeat(43),
  idToken: 'i'.repeat(1_100),
}

/** Session `i`: its own ids, handle and claims; the shared token strings unless given others. */
export function benchSession(
  i: number,
  now: number,
  shape: ClaimsShape,
  tokens: TokenSet = { ...TOKENS, accessTokenExpiresAt: now + 60_000 },
): SessionData {
  const sub = `user-${i}-${randomBytes(6).toString('hex')}`
  const key = SessionKey.generate()
  return {
    id: key.sessionId,
    key,
    idp: 'default',
    sub,
    sid: randomBytes(16).toString('base64url'),
    claims: claimsOf(shape, sub, i),
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
