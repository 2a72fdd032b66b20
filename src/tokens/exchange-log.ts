import type { FastifyBaseLogger } from 'fastify'
import type { ErrorCode } from '../errors.js'
import { failureFields, type IdpFailure } from '../oidc/translate.js'
import { sessionLogId } from '../session/log-id.js'
import type { ExchangeOutcome } from './exchange-outcome.js'

/** One token exchange, as the refresh observer hears of it. */
export interface ExchangeRecord {
  readonly outcome: ExchangeOutcome
  readonly ms: number
  readonly sessionId: string
  /** The route audience's label. */
  readonly audience: string
  readonly failure?: IdpFailure | undefined
  /** The session's provider: with several, the same audience may be exchanged at each. */
  readonly idp?: string | undefined
  /** What of the IdP's answer the gateway refused (`wrong_token_type`), never its token. */
  readonly refused?: string | undefined
}

/**
 * One line per token exchange, never with a token in it: what the IdP
 * answered (its OAuth `error` and `error_description`, any token it echoes
 * redacted, or the network cause) and the catalogue code the request got.
 */
export function logExchange(log: FastifyBaseLogger, record: ExchangeRecord): void {
  const { outcome, ms, sessionId, audience, failure, idp, refused } = record
  const fields = {
    session: sessionLogId(sessionId),
    ms,
    audience,
    ...(idp === undefined ? {} : { idp }),
    ...failureFields(failure),
    ...(refused === undefined ? {} : { refused }),
  }
  const [level, code, msg] = describe(outcome)
  log[level](code ? { code, ...fields } : fields, msg)
}

function describe(outcome: ExchangeOutcome): ['info' | 'warn', ErrorCode | undefined, string] {
  switch (outcome) {
    case 'success':
      return ['info', undefined, 'token exchanged']
    case 'client_refused':
      return [
        'warn',
        'GATEHOUSE_ERR_IDP_CLIENT_REFUSED',
        "token exchange failed: the identity provider refused the gateway's client credentials; the session stays",
      ]
    case 'dpop_proof_refused':
      return [
        'warn',
        'GATEHOUSE_ERR_DPOP_PROOF_REFUSED',
        "token exchange failed: the identity provider refused the gateway's DPoP proof; the session stays",
      ]
    case 'unavailable':
      return [
        'warn',
        'GATEHOUSE_ERR_TOKEN_EXCHANGE_UNAVAILABLE',
        'token exchange failed: identity provider unavailable',
      ]
    case 'subject_expired':
      return [
        'warn',
        'GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED',
        'token exchange not attempted: the ID token to exchange has expired, and the identity provider sent no new one at refresh (or the session has no refresh token); this route answers 403, the session stays',
      ]
    case 'wrong_token_type':
      return [
        'warn',
        'GATEHOUSE_ERR_TOKEN_EXCHANGE_WRONG_TOKEN_TYPE',
        'token exchange answer refused: the identity provider issued a token this route may not forward (refused names which member); nothing forwarded or kept, this route answers 502, the session stays',
      ]
    default:
      // A refusal names a configuration the operator must fix at the IdP or in routes[].exchange.
      return [
        'warn',
        'GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED',
        `token exchange refused (${outcome}): this route answers 403, the session stays`,
      ]
  }
}
