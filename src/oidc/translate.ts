import * as oauth from 'oauth4webapi'
import { type ErrorCode, type GatehouseError, gatehouseError } from '../errors.js'

/** The calls Gatehouse makes to the IdP, each with its own error when the IdP cannot serve it. */
export type IdpOperation = 'refresh' | 'client_credentials' | 'callback' | 'discovery' | 'revocation' | 'par'

const unavailable: Record<IdpOperation, ErrorCode> = {
  refresh: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
  client_credentials: 'GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE',
  callback: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
  discovery: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
  revocation: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
  par: 'GATEHOUSE_ERR_IDP_UNAVAILABLE',
}

/**
 * OIDC Core §3.1.2.6: the errors with which an IdP answers `prompt=none`
 * when it would have had to show the user a page. Not failures: answers to
 * "is the user signed in?".
 */
const INTERACTION_ERRORS: ReadonlySet<string> = new Set([
  'login_required',
  'consent_required',
  'interaction_required',
  'account_selection_required',
])

/** The OIDC §3.1.2.6 error the IdP answered a login with, if it was one of them. */
export function interactionRequired(err: unknown): string | undefined {
  const cause = err instanceof oauth.AuthorizationResponseError ? err : (err as Error | undefined)?.cause
  return cause instanceof oauth.AuthorizationResponseError && INTERACTION_ERRORS.has(cause.error)
    ? cause.error
    : undefined
}

/**
 * The 503 for an operation the IdP cannot serve now, so that a refresh
 * reports as a refresh and a client-credentials fetch as a client token.
 */
export function idpUnavailable(operation: IdpOperation, detail?: string, cause?: unknown): GatehouseError {
  return gatehouseError(unavailable[operation], detail, cause)
}

/**
 * The single place where failures of IdP calls become gateway errors, so no
 * caller guesses from a stray try/catch.
 *
 * - An OAuth error body (`ResponseBodyError`) is the IdP's verdict: for a
 *   refresh, `invalid_grant` means the grant is gone (RFC 6749 §5.2), so the
 *   session is over.
 * - A 5xx, a timeout, a refused or reset connection, or an unparseable
 *   answer means the IdP is unavailable: retry later, keep the session.
 */
export function translateIdpError(operation: IdpOperation, err: unknown): GatehouseError {
  if (err instanceof oauth.ResponseBodyError) {
    if (err.status >= 500) return idpUnavailable(operation, undefined, err)
    if (operation === 'refresh' && err.error === 'invalid_grant') {
      return gatehouseError('GATEHOUSE_ERR_SESSION_EXPIRED', undefined, err)
    }
    // RFC 8707 §2: the IdP will not issue a token for this resource. The
    // grant itself stands, so the session does too.
    if (operation === 'refresh' && err.error === 'invalid_target') {
      return gatehouseError('GATEHOUSE_ERR_RESOURCE_REFUSED', undefined, err)
    }
    if (operation === 'callback' || operation === 'par') {
      return gatehouseError(
        'GATEHOUSE_ERR_LOGIN_FAILED',
        `The identity provider refused the login (${err.error}).`,
        err,
      )
    }
    return idpUnavailable(operation, undefined, err)
  }
  if (err instanceof oauth.AuthorizationResponseError) {
    return gatehouseError(
      'GATEHOUSE_ERR_LOGIN_FAILED',
      `The identity provider answered with an error (${err.error}).`,
      err,
    )
  }
  if (err instanceof oauth.OperationProcessingError || err instanceof oauth.UnsupportedOperationError) {
    // A 5xx without an OAuth body surfaces here as a non-conforming response.
    const status = (err.cause as { status?: number } | undefined)?.status
    if ((operation === 'callback' || operation === 'par') && !(typeof status === 'number' && status >= 500)) {
      return gatehouseError(
        'GATEHOUSE_ERR_LOGIN_FAILED',
        `The login response failed validation: ${err.message}`,
        err,
      )
    }
    return idpUnavailable(operation, undefined, err)
  }
  // Network failures, AbortSignal timeouts and undici errors.
  return idpUnavailable(operation, undefined, err)
}
