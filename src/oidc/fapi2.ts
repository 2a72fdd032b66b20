import type * as oauth from 'oauth4webapi'
import { FAPI2_ALGORITHMS } from '../config/fapi2.js'
import type { GatehouseConfig } from '../config/types.js'

type OidcConfig = GatehouseConfig['oidc']

/**
 * The ID-token algorithms a FAPI 2.0 client accepts from this IdP: those
 * of PS256, ES256, EdDSA (§5.4.1) it advertises. The client may be
 * registered for any of them, and an IdP with an RSA and an EC key
 * (Keycloak's default) advertises several, so no one of them is picked.
 */
export function fapi2IdTokenAlgorithms(as: Readonly<oauth.AuthorizationServer>): string[] {
  const advertised = as.id_token_signing_alg_values_supported ?? []
  return FAPI2_ALGORITHMS.filter((alg) => advertised.includes(alg))
}

/**
 * Why this IdP cannot serve a FAPI 2.0 login as configured, or `undefined`.
 * Checked at every login (as `par: required` is), and by /readyz: an IdP
 * that stops advertising a requirement stops the logins, instead of them
 * silently falling back to a weaker flow.
 */
export function fapi2Incompatibility(
  oidc: OidcConfig,
  as: Readonly<oauth.AuthorizationServer>,
): string | undefined {
  if (oidc.profile !== 'fapi2') return undefined
  // RFC 9207 §3: the client must check `iss`, which oauth4webapi does exactly when it is advertised.
  if (as.authorization_response_iss_parameter_supported !== true)
    return 'profile fapi2, but the identity provider does not advertise authorization_response_iss_parameter_supported (RFC 9207)'
  if (fapi2IdTokenAlgorithms(as).length === 0)
    return `profile fapi2, but the identity provider signs ID tokens with none of ${FAPI2_ALGORITHMS.join(', ')} (id_token_signing_alg_values_supported)`
  if (!(as.code_challenge_methods_supported ?? []).includes('S256'))
    return 'profile fapi2, but the identity provider does not advertise PKCE S256 (code_challenge_methods_supported)'
  // §5.3.2.2: sender-constrained tokens. An IdP that advertises no DPoP
  // algorithm ignores proofs and issues Bearer tokens, which oidc.dpop
  // refuses at every token request anyway; here the logins stop before one.
  const dpopAlgorithms = as.dpop_signing_alg_values_supported
  if (oidc.dpop && !(Array.isArray(dpopAlgorithms) && dpopAlgorithms.length > 0))
    return 'profile fapi2 with DPoP-bound tokens, but the identity provider does not advertise dpop_signing_alg_values_supported (RFC 9449 §5.1)'
  if (!oidc.dpop && as.tls_client_certificate_bound_access_tokens !== true)
    return 'profile fapi2 with mTLS-bound tokens, but the identity provider does not advertise tls_client_certificate_bound_access_tokens (RFC 8705 §3.3)'
  return undefined
}
