import type { FastifyBaseLogger } from 'fastify'
import type { ErrorCode } from '../errors.js'
import { failureFields, type IdpFailure } from '../oidc/translate.js'
import { sessionLogId } from '../session/log-id.js'
import type { RefreshOutcome } from './refresh-outcome.js'

/** One redemption of a refresh token, as the refresh observer hears of it. */
export interface RefreshRecord {
  readonly outcome: RefreshOutcome
  readonly ms: number
  readonly sessionId: string
  /** The audience's label, `''` for the login token. */
  readonly resource?: string
  readonly failure?: IdpFailure | undefined
  /** The session's provider. */
  readonly idp?: string | undefined
}

/**
 * One line per redemption of a refresh token, never with a token in it:
 * what the IdP answered (its OAuth `error` and `error_description`, or the
 * network cause) and the catalogue code the request got.
 */
export function logRefresh(log: FastifyBaseLogger, record: RefreshRecord): void {
  const { outcome, ms, sessionId, resource = '', failure, idp } = record
  const fields = {
    session: sessionLogId(sessionId),
    ...(idp === undefined ? {} : { idp }),
    ms,
    ...(resource === '' ? {} : { resource }),
    ...failureFields(failure),
  }
  const [level, code, msg] = describe(outcome, failure)
  log[level](code ? { code, ...fields } : fields, msg)
}

type Level = 'info' | 'warn'

function describe(
  outcome: RefreshOutcome,
  failure: IdpFailure | undefined,
): [Level, ErrorCode | undefined, string] {
  switch (outcome) {
    case 'success':
      return ['info', undefined, 'access token refreshed']
    case 'late_success':
      return [
        'info',
        undefined,
        'access token refreshed: the late answer to a refresh that timed out was kept, with its rotated refresh token',
      ]
    case 'late_lost':
      return [
        'warn',
        'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
        "no usable answer to a refresh that timed out came within oidc.lateAnswerWait either: if the identity provider carried it out, the rotated refresh token is lost and the session's next refresh will be refused",
      ]
    case 'invalid_grant':
      return ['info', 'GATEHOUSE_ERR_SESSION_EXPIRED', 'refresh token refused (invalid_grant): session ended']
    case 'client_refused':
      return [
        'warn',
        'GATEHOUSE_ERR_IDP_CLIENT_REFUSED',
        "access token refresh failed: the identity provider refused the gateway's client credentials; the session stays",
      ]
    case 'dpop_proof_refused':
      return [
        'warn',
        'GATEHOUSE_ERR_DPOP_PROOF_REFUSED',
        "access token refresh failed: the identity provider refused the gateway's DPoP proof; the session stays",
      ]
    case 'unavailable':
      return [
        'warn',
        'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
        'access token refresh failed: identity provider unavailable',
      ]
    case 'unavailable_limit':
      return [
        'warn',
        'GATEHOUSE_ERR_SESSION_EXPIRED',
        'identity provider unavailable for longer than tokens.unavailableLimit: session ended',
      ]
  }
  if (failure?.verdict === 'route_refused') {
    return [
      'info',
      'GATEHOUSE_ERR_RESOURCE_REFUSED',
      `resource refused (${outcome}): this route answers 403, the session stays`,
    ]
  }
  // Any other refusal of the grant: rarer than invalid_grant, so a warning.
  return [
    'warn',
    'GATEHOUSE_ERR_SESSION_EXPIRED',
    `refresh token refused (${failure?.oauthError ?? outcome}): session ended`,
  ]
}
