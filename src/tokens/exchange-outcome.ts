import { exchangeAnswerRefused } from '../oidc/exchange.js'
import { idpFailureOf, refusesProof } from '../oidc/translate.js'

/**
 * How one token exchange ended, as the `outcome` label of
 * `gatehouse_token_exchanges_total` and in its log line. A bounded set:
 * the OAuth codes that refuse the route (src/oidc/answers.ts), one label
 * for any other code, one for a refused client, one for a refused DPoP
 * proof, one for an unavailable IdP, one for an ID token to exchange
 * that has expired with no new one to be had, which the gateway refuses
 * without asking the IdP, and one for an answer whose token the route may
 * not forward (its `token_type` or `issued_token_type`, or the subject
 * token given back), which the gateway refuses.
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
  | 'subject_expired'
  | 'wrong_token_type'

const NAMED: ReadonlySet<string> = new Set([
  'invalid_target',
  'invalid_scope',
  'unauthorized_client',
  'invalid_grant',
  'invalid_request',
  'unsupported_grant_type',
])

/** Refusals the gateway made itself, before any call to the IdP, and their outcome. */
const refusedHere = new WeakMap<Error, ExchangeOutcome>()

/**
 * Marks `err` as the gateway's own refusal of the exchange (or of the IdP's
 * answer to it), counted as `outcome`.
 */
export function refusedBeforeExchange<E extends Error>(err: E, outcome: ExchangeOutcome): E {
  refusedHere.set(err, outcome)
  return err
}

/** The outcome of a failed exchange, from the error the IdP client (or the gateway itself) threw. */
export function exchangeOutcome(err: unknown): ExchangeOutcome {
  const own = err instanceof Error ? refusedHere.get(err) : undefined
  if (own !== undefined) return own
  if (exchangeAnswerRefused(err) !== undefined) return 'wrong_token_type'
  const failure = idpFailureOf(err)
  if (!failure) return 'unavailable'
  if (failure.verdict === 'unavailable')
    return refusesProof(failure.answer) ? 'dpop_proof_refused' : 'unavailable'
  if (failure.verdict === 'client_refused') return 'client_refused'
  return NAMED.has(failure.answer) ? (failure.answer as ExchangeOutcome) : 'other_oauth_error'
}
