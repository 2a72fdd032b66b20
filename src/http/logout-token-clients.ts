import { createHash } from 'node:crypto'
import { decodeJwt } from 'jose'
import { gatehouseError } from '../errors.js'
import type { OidcClient } from '../oidc/client.js'
import type { LogoutClaims } from '../oidc/logout-token.js'
import type { IdentityProviders } from '../oidc/providers.js'
import type { ClientRegistration } from '../types.js'

/**
 * The clients a verified token is for (§2.6: the RP ends the sessions the
 * token names at each), one entry per issuer and client id, `verifier`
 * first: each of `named` (whose issuer and client id the token claims)
 * whose client id is another. `verifier` checked the signature, `iss` and
 * `aud`, so what `named` was read from is the IdP's own word, and an IdP
 * that names several of our clients in one token (`aud` is an array, as
 * in an ID token, OIDC Core §2) has signed each of their users out.
 */
export function clientsOf(verifier: OidcClient, named: readonly OidcClient[]): OidcClient[] {
  const clients = new Map<string, OidcClient>()
  for (const client of [verifier, ...named]) {
    const key = JSON.stringify([client.registration.issuer, client.registration.clientId])
    if (!clients.has(key)) clients.set(key, client)
  }
  return [...clients.values()]
}

/**
 * The providers a token says it is from and for (`iss` and `aud`, read
 * without trusting them): only these are asked to verify it, so a token
 * is never checked against, or attributed to, a provider it does not name.
 */
export function claimedBy(token: string, providers: IdentityProviders): OidcClient[] {
  let iss: unknown
  let aud: unknown
  try {
    ;({ iss, aud } = decodeJwt(token))
  } catch {
    throw gatehouseError('GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN', 'The logout token is not valid: not a JWT.')
  }
  const audiences = Array.isArray(aud) ? aud : [aud]
  return providers.all.filter(
    (oidc) => sameIssuer(oidc.metadata?.issuer ?? oidc.issuer, iss) && audiences.includes(oidc.clientId),
  )
}

/** Before discovery only the configured issuer is known, which a URL parse may have given a trailing slash. */
function sameIssuer(issuer: string, claimed: unknown): boolean {
  return typeof claimed === 'string' && issuer.replace(/\/$/, '') === claimed.replace(/\/$/, '')
}

/**
 * What a seen logout token is remembered as: its `jti` is unique only per
 * issuer (§2.4), and the token is its client's, whichever entry's path it
 * was posted to, so the key is the issuer, client id and `jti` themselves,
 * not an entry's name, which a reload may add before, remove or rename
 * (the token would then be taken again). Hashed: a fixed length, however
 * long the issuer or `jti`, and no issuer or client id in clear in the store.
 */
export function replayKey(registration: ClientRegistration, claims: Pick<LogoutClaims, 'jti'>): string {
  const named = JSON.stringify([registration.issuer, registration.clientId, claims.jti])
  return `logout:${createHash('sha256').update(named).digest('base64url')}`
}
