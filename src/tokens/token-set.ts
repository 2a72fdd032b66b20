import type { AudienceToken, TokenAudience, TokenSet } from '../types.js'

/** The token the session holds for `audience`, the login's own without one. */
export function tokenFor(tokens: TokenSet, audience: TokenAudience | undefined): AudienceToken | undefined {
  return audience ? tokens.audiences?.[audience.key] : tokens
}

/**
 * The session's tokens after a redemption for `audience` brought `next`.
 * The rotated refresh token and the token it came with are one write (one
 * compare-and-set on `v`): storing either without the other would leave a
 * session whose refresh token is already spent. Tokens of the other
 * audiences stay: the rotation did not revoke them.
 */
export function merged(tokens: TokenSet, audience: TokenAudience | undefined, next: TokenSet): TokenSet {
  if (audience === undefined) return { ...next, ...(tokens.audiences ? { audiences: tokens.audiences } : {}) }
  return {
    ...tokens,
    refreshToken: next.refreshToken,
    refreshTokenExpiresAt: next.refreshTokenExpiresAt,
    idToken: next.idToken,
    audiences: {
      ...tokens.audiences,
      [audience.key]: {
        accessToken: next.accessToken,
        accessTokenExpiresAt: next.accessTokenExpiresAt,
        accessTokenLifetime: next.accessTokenLifetime,
        ...(next.certificate === undefined ? {} : { certificate: next.certificate }),
      },
    },
  }
}
