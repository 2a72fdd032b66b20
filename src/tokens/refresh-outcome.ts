import { isGatehouseError } from '../errors.js'
import { type IdpFailure, idpFailureOf, refusesProof } from '../oidc/translate.js'

/**
 * How one redemption of a refresh token ended, as the `outcome` label of
 * `gatehouse_token_refreshes_total` and in the refresh log line. A bounded
 * set: the OAuth codes with a row of their own in the classification
 * (src/oidc/answers.ts), one label for any other code, one for a refused
 * client, one for a refused DPoP proof, one for an unavailable IdP, one
 * for an outage that outlasted `tokens.unavailableLimit`, and two for the
 * answer to a timed-out refresh: stored when it came (`late_success`), or
 * none usable within `oidc.lateAnswerWait` (`late_lost`).
 */
export type RefreshOutcome =
  | 'success'
  | 'late_success'
  | 'late_lost'
  | 'invalid_grant'
  | 'invalid_request'
  | 'invalid_scope'
  | 'unsupported_grant_type'
  | 'invalid_target'
  | 'other_oauth_error'
  | 'bad_request'
  | 'client_refused'
  | 'dpop_proof_refused'
  | 'unavailable'
  | 'unavailable_limit'

/** The outcome of a failed redemption, from the error the IdP client threw. */
export function refreshOutcome(err: unknown): RefreshOutcome {
  const failure: IdpFailure | undefined = idpFailureOf(err)
  if (!failure) {
    return isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_SESSION_EXPIRED'
      ? 'invalid_grant'
      : 'unavailable'
  }
  switch (failure.verdict) {
    case 'client_refused':
      return 'client_refused'
    case 'session_over':
    case 'route_refused':
      return failure.answer === 'invalid_grant' ||
        failure.answer === 'invalid_request' ||
        failure.answer === 'invalid_scope' ||
        failure.answer === 'unsupported_grant_type' ||
        failure.answer === 'invalid_target' ||
        failure.answer === 'bad_request'
        ? failure.answer
        : 'other_oauth_error'
    default:
      return refusesProof(failure.answer) ? 'dpop_proof_refused' : 'unavailable'
  }
}
