import { type ErrorCode, isGatehouseError } from '../errors.js'

/**
 * Failures to renew a token that say nothing against the one held: the IdP
 * or the store is unavailable, another request's renewal outlasted the
 * wait, the IdP refused the gateway's own credentials or its DPoP proof
 * (RFC 9449 §5, §8: refused before the grant was looked at). The IdP still
 * accepts the held token until it expires, so it is used meanwhile and a
 * later request tries again. A refusal of the grant, the resource or the
 * scopes is not one of them: that is the answer.
 */
const LEAVE_HELD = new Set<ErrorCode>([
  'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
  'GATEHOUSE_ERR_TOKEN_EXCHANGE_UNAVAILABLE',
  'GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE',
  'GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT',
  'GATEHOUSE_ERR_STORE_UNAVAILABLE',
  'GATEHOUSE_ERR_IDP_CLIENT_REFUSED',
  'GATEHOUSE_ERR_DPOP_PROOF_REFUSED',
])

/** Whether a renewal that failed with `err` leaves the held token, while it lasts, to be used. */
export function leavesHeld(err: unknown): boolean {
  return isGatehouseError(err) && LEAVE_HELD.has(err.code)
}
