/**
 * Claims about protocol plumbing, not the user (OIDC Core §2, §3.1.3.6,
 * Front/Back-Channel Logout `sid`): they stay out of the session and of
 * `/auth/user`. `iss` stays: SPAs with several IdPs tell users apart by it.
 */
const PROTOCOL_CLAIMS: ReadonlySet<string> = new Set([
  'aud',
  'azp',
  'at_hash',
  'c_hash',
  's_hash',
  'nonce',
  'iat',
  'exp',
  'nbf',
  'jti',
  'auth_time',
  'acr',
  'amr',
  'sid',
])

/**
 * The claims a session keeps: userinfo's over the ID token's (OIDC Core
 * §5.3.2; `sub` was already checked equal), without protocol claims, or
 * exactly the `allow` list when the deployment gives one.
 */
export function sessionClaims(
  idToken: Readonly<Record<string, unknown>>,
  userinfo: Readonly<Record<string, unknown>> | undefined,
  allow: readonly string[] | undefined,
): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...idToken, ...userinfo }
  const claims: Record<string, unknown> = {}
  if (allow) {
    for (const name of allow) if (merged[name] !== undefined) claims[name] = merged[name]
    return claims
  }
  for (const [name, value] of Object.entries(merged)) if (!PROTOCOL_CLAIMS.has(name)) claims[name] = value
  return claims
}
