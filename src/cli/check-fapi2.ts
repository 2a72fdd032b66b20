import type * as oauth from 'oauth4webapi'
import { FAPI2_ALGORITHMS } from '../config/fapi2.js'
import { LOOPBACK_HOST as LOOPBACK } from '../config/loopback.js'
import type { GatehouseConfig } from '../config/types.js'
import { advertisedClientAuth } from '../oidc/advertised-client-auth.js'
import type { OnlineReport, Row } from './online-report.js'

/**
 * `check --online` with `oidc.profile: fapi2`: each requirement of the FAPI
 * 2.0 Security Profile that needs the IdP, against what its discovery
 * document advertises. A missing one is blocking: the gateway refuses
 * FAPI logins rather than fall back to a weaker flow (oidc/fapi2.ts).
 */
export function compareFapi2(config: GatehouseConfig, as: Readonly<oauth.AuthorizationServer>): OnlineReport {
  const { oidc } = config
  if (oidc.profile !== 'fapi2') return { rows: [], hints: [], blocking: false }
  const rows: Row[] = []
  const hints: string[] = []
  const row = (capability: string, need: string, advertised: string, ok: boolean) =>
    rows.push({ capability: `FAPI 2.0: ${capability}`, need, advertised, verdict: ok ? 'ok' : 'BLOCKING' })
  const list = (values: readonly string[] | undefined) => (values?.length ? values.join(', ') : 'not listed')

  row(
    'PAR (§5.3.2.2)',
    'required',
    as.require_pushed_authorization_requests
      ? 'required'
      : as.pushed_authorization_request_endpoint
        ? 'yes'
        : 'no',
    Boolean(as.pushed_authorization_request_endpoint),
  )
  row(
    'PKCE (§5.3.2.2)',
    'S256',
    list(as.code_challenge_methods_supported),
    (as.code_challenge_methods_supported ?? []).includes('S256'),
  )
  row(
    'response_type (§5.3.2.2)',
    'code',
    list(as.response_types_supported),
    (as.response_types_supported ?? []).includes('code'),
  )
  row(
    'iss response parameter (RFC 9207)',
    'required',
    as.authorization_response_iss_parameter_supported ? 'yes' : 'no',
    as.authorization_response_iss_parameter_supported === true,
  )
  const idTokenAlgs = as.id_token_signing_alg_values_supported
  row(
    'ID-token algorithm (§5.4.1)',
    FAPI2_ALGORITHMS.join(' or '),
    list(idTokenAlgs),
    FAPI2_ALGORITHMS.some((alg) => idTokenAlgs?.includes(alg)),
  )
  const { methods } = advertisedClientAuth(as)
  row('client authentication (§5.3.2.1)', oidc.clientAuth, list(methods), methods.includes(oidc.clientAuth))
  if (oidc.clientAuth === 'private_key_jwt') {
    const algs = as.token_endpoint_auth_signing_alg_values_supported
    const alg = String(oidc.clientKey?.jwk.alg)
    // RFC 8414 §2: an absent list says nothing; the IdP may still take the algorithm.
    row('client assertion algorithm (§5.4.1)', alg, list(algs), algs === undefined || algs.includes(alg))
  }
  if (oidc.dpop) {
    const algs = as.dpop_signing_alg_values_supported
    const alg = oidc.dpopAlgorithm
    row(
      'sender-constrained tokens (§5.3.2.1)',
      `DPoP ${alg}`,
      `DPoP ${list(algs)}`,
      algs?.includes(alg) === true,
    )
  } else {
    row(
      'sender-constrained tokens (§5.3.2.1)',
      'mTLS-bound (RFC 8705 §3)',
      as.tls_client_certificate_bound_access_tokens ? 'mTLS-bound' : 'not advertised',
      as.tls_client_certificate_bound_access_tokens === true,
    )
    if (!as.mtls_endpoint_aliases) {
      hints.push(
        'the IdP advertises no mtls_endpoint_aliases: the client certificate goes to its regular endpoints, which must ask for it.',
      )
    }
  }
  const issuer = new URL(as.issuer)
  const https = issuer.protocol === 'https:'
  const loopback = LOOPBACK.test(issuer.hostname)
  // The scheme as a word, as the other rows say theirs (URL.protocol keeps the colon).
  row(
    'TLS (§5.2.1)',
    'https (loopback exempt)',
    https ? 'https' : `${issuer.protocol.slice(0, -1)}${loopback ? ' (loopback host)' : ''}`,
    https || loopback,
  )
  return { rows, hints, blocking: rows.some((r) => r.verdict === 'BLOCKING') }
}
