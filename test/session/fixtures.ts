import type { SessionData } from '../../src/session/types.js'

/** Alice's session created at `now`: 60 s idle, 1 h absolute, version 0. */
export function session(id: string, now: number, extra: Partial<SessionData> = {}): SessionData {
  return {
    id,
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
