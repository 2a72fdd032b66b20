import type { ExchangeConfig } from '../config/types.js'
import { type GatehouseError, gatehouseError } from '../errors.js'
import { printable } from './translate.js'

/** RFC 8693 §2.1. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
/** RFC 7523 §2.1, which Entra ID's on-behalf-of flow uses with `requested_token_use`. */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

/** RFC 8693 §3: the type of the token the session hands over. */
const SUBJECT_TOKEN_TYPES = {
  access_token: 'urn:ietf:params:oauth:token-type:access_token',
  id_token: 'urn:ietf:params:oauth:token-type:id_token',
} as const

/**
 * The grant type and parameters of one exchange of `subjectToken` as the
 * route's `exchange` asks. Client authentication and DPoP are the
 * caller's; everything here is the grant's own.
 */
export function exchangeParameters(
  exchange: ExchangeConfig,
  subjectToken: string,
): { readonly grantType: string; readonly parameters: URLSearchParams } {
  const parameters = new URLSearchParams()
  if (exchange.grant === 'jwt-bearer') {
    // Microsoft identity platform, "OAuth 2.0 On-Behalf-Of flow": the
    // middle tier's incoming token is the assertion.
    parameters.set('assertion', subjectToken)
    parameters.set('requested_token_use', 'on_behalf_of')
  } else {
    parameters.set('subject_token', subjectToken)
    parameters.set('subject_token_type', SUBJECT_TOKEN_TYPES[exchange.subjectToken])
    if (exchange.requestedTokenType !== undefined)
      parameters.set('requested_token_type', exchange.requestedTokenType)
    if (exchange.audience !== undefined) parameters.set('audience', exchange.audience)
  }
  if (exchange.resource !== undefined) parameters.set('resource', exchange.resource)
  if (exchange.scopes.length > 0) parameters.set('scope', exchange.scopes.join(' '))
  return {
    grantType: exchange.grant === 'jwt-bearer' ? JWT_BEARER_GRANT : TOKEN_EXCHANGE_GRANT,
    parameters,
  }
}

/**
 * RFC 8693 §2.2.1: a token that is not an OAuth access token (an ID token,
 * a SAML assertion asked for by `requestedTokenType`) comes with
 * `token_type: N_A`; oauth4webapi reads only Bearer and DPoP unless told.
 */
export const EXCHANGE_TOKEN_TYPES = { n_a: () => {} } as const

/** Refusals of an answer whose issued token is not of the type asked for (`issuedTypeRefusal`). */
const wrongType = new WeakSet<Error>()

/**
 * The refusal of an exchange answer whose `issued_token_type` is not the
 * type the route asks for (`requestedTokenType`, an access token by
 * default), or undefined when it is. RFC 8693 §2.2.1 makes the member
 * REQUIRED and says it names what was issued: an ID token, or any other
 * type, sent upstream as a Bearer access token is a token the upstream
 * was never meant to take (an ID token's audience is the gateway). Absent,
 * it is refused as well: Keycloak sends it (the type issued), as every
 * RFC 8693 implementation must; Entra ID's on-behalf-of (`grant:
 * jwt-bearer`, RFC 7523) has no such member and is not checked.
 */
export function issuedTypeRefusal(exchange: ExchangeConfig, issued: unknown): GatehouseError | undefined {
  if (exchange.grant === 'jwt-bearer') return undefined
  const asked = exchange.requestedTokenType ?? SUBJECT_TOKEN_TYPES.access_token
  if (issued === asked) return undefined
  const said = issued === undefined ? 'no issued_token_type' : `issued_token_type ${printable(issued, 100)}`
  const err = gatehouseError(
    'GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED',
    `The identity provider's exchange answer has ${said}, not ${asked}, the type this route asks for (RFC 8693 §2.2.1); the token is not forwarded. The session stays; other routes still work.`,
  )
  wrongType.add(err)
  return err
}

/** Whether `err` is `issuedTypeRefusal`'s. */
export function refusesIssuedType(err: unknown): boolean {
  return err instanceof Error && wrongType.has(err)
}
