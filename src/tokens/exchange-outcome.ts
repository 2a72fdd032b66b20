import { idpFailureOf, refusesProof } from '../oidc/translate.js'

/**
 * How one token exchange ended, as the `outcome` label of
 * `gatehouse_token_exchanges_total` and in its log line. A bounded set:
 * the OAuth codes that refuse the route (src/oidc/answers.ts), one label
 * for any other code, one for a refused client, one for a refused DPoP
 * proof and one for an unavailable IdP.
 */
export type ExchangeOutcome =
  | 'success'
  | 'invalid_target'
  | 'invalid_scope'
  | 'unauthorized_client'
  | 'invalid_grant'
  | 'invalid_request'
  | 'unsupported_grant_type'
  | 'other_oauth_error'
  | 'client_refused'
  | 'dpop_proof_refused'
  | 'unavailable'

const NAMED: ReadonlySet<string> = new Set([
  'invalid_target',
  'invalid_scope',
  'unauthorized_client',
  'invalid_grant',
  'invalid_request',
  'unsupported_grant_type',
])

/** The outcome of a failed exchange, from the error the IdP client threw. */
export function exchangeOutcome(err: unknown): ExchangeOutcome {
  const failure = idpFailureOf(err)
  if (!failure) return 'unavailable'
  if (failure.verdict === 'unavailable')
    return refusesProof(failure.answer) ? 'dpop_proof_refused' : 'unavailable'
  if (failure.verdict === 'client_refused') return 'client_refused'
  return NAMED.has(failure.answer) ? (failure.answer as ExchangeOutcome) : 'other_oauth_error'
}
