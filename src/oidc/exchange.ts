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

/** RFC 8693 §3's types an upstream takes as an access token: an access token, and a JWT, which most are. */
const ACCESS_TYPES: ReadonlySet<unknown> = new Set([
  SUBJECT_TOKEN_TYPES.access_token,
  'urn:ietf:params:oauth:token-type:jwt',
])

/**
 * RFC 8693 §3's types that are no credential for an upstream unless the
 * route asks for one: an ID token (its audience is the gateway), a refresh
 * token (a long-lived credential no upstream may hold), a SAML assertion.
 */
const NOT_FOR_UPSTREAM: ReadonlySet<unknown> = new Set([
  SUBJECT_TOKEN_TYPES.id_token,
  'urn:ietf:params:oauth:token-type:refresh_token',
  'urn:ietf:params:oauth:token-type:saml1',
  'urn:ietf:params:oauth:token-type:saml2',
])

/**
 * The refusal of an exchange answer whose `issued_token_type` (RFC 8693
 * §2.2.1: what was issued) is not what the route may forward, or
 * undefined when it may: the type the route asks for
 * (`requestedTokenType`); for a route that asks for an access token, or
 * for none in particular, any type that is no ID token, refresh token or
 * SAML assertion (an access token and a JWT stand for each other). Sent
 * upstream as a Bearer access token, an ID token is a token confused for
 * another, a refresh token a credential handed away. An answer that says
 * no type is taken as the one asked for, as oauth4webapi takes it: §2.2.1
 * makes the member REQUIRED, and Keycloak sends it, but a refusal would
 * break an IdP that omits it for nothing the answer shows. Entra ID's
 * on-behalf-of (`grant: jwt-bearer`, RFC 7523) has no such member.
 */
export function issuedTypeRefusal(exchange: ExchangeConfig, issued: unknown): GatehouseError | undefined {
  if (exchange.grant === 'jwt-bearer' || issued === undefined) return undefined
  const asked = exchange.requestedTokenType
  if (issued === asked) return undefined
  const forAccess = asked === undefined || ACCESS_TYPES.has(asked)
  if (forAccess && (ACCESS_TYPES.has(issued) || (asked === undefined && !NOT_FOR_UPSTREAM.has(issued))))
    return undefined
  const err = gatehouseError(
    'GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED',
    `The identity provider's exchange answer has issued_token_type ${printable(issued, 100)}, where this route takes ${asked ?? 'an access token'} (RFC 8693 §2.2.1); the token is not forwarded. The session stays; other routes still work.`,
  )
  wrongType.add(err)
  return err
}

/** Whether `err` is `issuedTypeRefusal`'s. */
export function refusesIssuedType(err: unknown): boolean {
  return err instanceof Error && wrongType.has(err)
}
