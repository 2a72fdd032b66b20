import type * as oauth from 'oauth4webapi'
import type { GatehouseConfig } from '../config/types.js'
import type { Verdict } from './online-report.js'

/**
 * `oidc.dpop` against what the IdP advertises (RFC 9449 §5.1). The algorithm
 * is blocking when the IdP lists others only: sign-in refuses then
 * (src/oidc/dpop.ts). An IdP that lists none may still take proofs, so
 * that is a warning.
 */
export function compareDpop(
  oidc: GatehouseConfig['oidc'],
  as: Readonly<oauth.AuthorizationServer>,
  row: (capability: string, need: string, advertised: string, verdict: Verdict) => void,
  hints: string[],
): void {
  if (!oidc.dpop) return
  const supported = as.dpop_signing_alg_values_supported
  const advertised = Array.isArray(supported) ? supported.join(', ') : 'not listed'
  if (!Array.isArray(supported)) {
    row('DPoP (RFC 9449)', oidc.dpopAlgorithm, advertised, 'warn')
    hints.push(
      'the IdP lists no dpop_signing_alg_values_supported: it may not accept DPoP proofs; sign-in will tell.',
    )
    return
  }
  const ok = supported.includes(oidc.dpopAlgorithm)
  row(
    'DPoP (RFC 9449)',
    oidc.dpopAlgorithm,
    supported.length === 0 ? 'none (an empty list)' : advertised,
    ok ? 'ok' : 'BLOCKING',
  )
  if (supported.length === 0)
    hints.push(
      'the IdP lists no algorithm at all in dpop_signing_alg_values_supported (an empty list, which RFC 8414 §3.2 would have omitted): it takes no DPoP proof; turn DPoP on at the IdP, or set oidc.dpop: false.',
    )
  else if (!ok) hints.push(`set oidc.dpopAlgorithm to one the IdP supports: ${supported.join(', ')}.`)
}
