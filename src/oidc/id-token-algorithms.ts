import type * as oauth from 'oauth4webapi'
import { FAPI2_ALGORITHMS } from '../config/fapi2.js'
import type { GatehouseConfig } from '../config/types.js'
import { fapi2IdTokenAlgorithms } from './fapi2.js'

/**
 * The ID-token algorithms this client accepts from `as`, to be checked in
 * place of oauth4webapi's own rule (the advertised list, else RS256); an
 * empty list keeps that rule.
 *
 * OIDC Core §2 allows an unsigned ID token (`alg: none`) only to a client
 * registered for it, and Gatehouse registers for none; oauth4webapi, asked
 * nothing, took one whenever the IdP listed `none` among
 * `id_token_signing_alg_values_supported`. The code flow's ID token is
 * trusted on the TLS of the token endpoint (§3.1.3.7 step 6), so the
 * signature is not what guards it, but an IdP that sends tokens unsigned
 * has been told so by its configuration, and a sign-in it makes so is
 * refused with that named (unexpected-alg.ts) rather than taken silently.
 */
export function idTokenAlgorithms(
  oidc: Pick<GatehouseConfig['oidc'], 'profile'>,
  as: Readonly<oauth.AuthorizationServer>,
): string[] {
  // FAPI 2.0 §5.4.1: the profile's algorithms alone (fapi2.ts). At an IdP
  // that lists none of them sign-in is refused (fapi2Incompatibility), but
  // a session's refresh goes on: an empty list would hand oauth4webapi the
  // advertised one, `none` and RS256 among what it may hold.
  if (oidc.profile === 'fapi2') {
    const listed = fapi2IdTokenAlgorithms(as)
    return listed.length > 0 ? listed : [...FAPI2_ALGORITHMS]
  }
  const advertised = as.id_token_signing_alg_values_supported
  if (!Array.isArray(advertised) || !advertised.includes('none')) return []
  const signed = advertised.filter((alg) => alg !== 'none')
  // Only `none` listed: OIDC Core §3.1.3.7's default, RS256.
  return signed.length > 0 ? signed : ['RS256']
}
