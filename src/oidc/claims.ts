/**
 * Claims about protocol plumbing, not the user (OIDC Core §2, §3.1.3.6,
 * Front/Back-Channel Logout `sid`): they stay out of the session and of
 * `/auth/user`. `iss` stays: SPAs with several IdPs tell users apart by it.
 * So do `acr` and `amr`, how the user authenticated: OIDC Core §3.1.3.7
 * item 12 has the client check `acr`, and the gateway, which knows no order
 * among its values, leaves that to the SPA (docs/security.md), which can
 * make it only here: the browser carries the authorization request and
 * can drop its `acr_values`.
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
  'sid',
  // OIDC Core §5.6.2: references to claims another provider holds, not claims.
  '_claim_names',
  '_claim_sources',
])

/**
 * Never kept, even when `session.claims` names it: a distributed claim's
 * source carries the `access_token` to fetch it with (OIDC Core §5.6.2), a
 * bearer credential, and the claims go to the SPA at `/auth/user`, which
 * no token may reach (RFC 10017 §6.1).
 */
const CREDENTIAL_CLAIMS: ReadonlySet<string> = new Set(['_claim_sources'])

/**
 * The claims a session keeps: userinfo's over the ID token's (OIDC Core
 * §5.3.2; `sub` was already checked equal), but for the ID token's `iss`,
 * without protocol claims, or
 * exactly the `allow` list when the deployment gives one; never a claims
 * source, which may hold a token.
 */
export function sessionClaims(
  idToken: Readonly<Record<string, unknown>>,
  userinfo: Readonly<Record<string, unknown>> | undefined,
  allow: readonly string[] | undefined,
): Record<string, unknown> {
  // The ID token's `iss` was checked against the configured issuer; a JSON
  // userinfo answer is signed by nothing, and its `iss` checked by no one
  // (§5.3.2 asks only for its `sub`), so it cannot name another issuer's user.
  const merged: Record<string, unknown> = {
    ...idToken,
    ...userinfo,
    ...(idToken.iss === undefined ? {} : { iss: idToken.iss }),
  }
  // Own data properties only, made as JSON.parse makes them: an IdP's
  // `__proto__` claim assigned would replace the object's prototype, and an
  // allowed `constructor` looked up would find Object's.
  if (allow)
    return Object.fromEntries(
      allow
        .filter(
          (name) => Object.hasOwn(merged, name) && merged[name] !== undefined && !CREDENTIAL_CLAIMS.has(name),
        )
        .map((name) => [name, merged[name]]),
    )
  return Object.fromEntries(Object.entries(merged).filter(([name]) => !PROTOCOL_CLAIMS.has(name)))
}

/** OIDC Core §2: a `sub` "MUST NOT exceed 255 ASCII characters in length". */
export const SUB_MAX_LENGTH = 255

/**
 * The most a session's claims may take as JSON, 64 KiB: a profile and a
 * few hundred groups. The session record and every `/auth/user` answer
 * carry them, and an IdP answer may hold 1 MiB (idp-http.ts).
 */
export const CLAIMS_MAX_BYTES = 64 * 1024

/** How deeply claims may nest; JSON.stringify recurses, and past some thousands overflows the stack. */
export const CLAIMS_MAX_DEPTH = 32

/** Why the ID token's `sub` cannot name a session, if it cannot. */
export function subRefusal(sub: string): string | undefined {
  if (sub.length === 0) return 'the ID token "sub" claim is empty'
  if (sub.length > SUB_MAX_LENGTH)
    return `the ID token "sub" claim has ${sub.length} characters, over OIDC Core's ${SUB_MAX_LENGTH}`
  return undefined
}

/** Why a session cannot keep these claims, if it cannot. */
export function claimsRefusal(claims: Readonly<Record<string, unknown>>): string | undefined {
  if (depthOver(claims, CLAIMS_MAX_DEPTH)) return `the claims nest deeper than ${CLAIMS_MAX_DEPTH} levels`
  const bytes = Buffer.byteLength(JSON.stringify(claims))
  if (bytes > CLAIMS_MAX_BYTES)
    return `the claims take ${bytes} bytes as JSON, over the ${CLAIMS_MAX_BYTES} a session keeps`
  return undefined
}

/** Whether `value` nests objects or arrays more than `levels` deep; stops looking at the first that does. */
function depthOver(value: unknown, levels: number): boolean {
  if (value === null || typeof value !== 'object') return false
  if (levels === 0) return true
  for (const item of Object.values(value)) if (depthOver(item, levels - 1)) return true
  return false
}
