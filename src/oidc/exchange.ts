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
 * The token types an exchange answer is parsed with: oauth4webapi's Bearer
 * and DPoP, and RFC 8693 §2.2.1's `N_A`, which comes with a token that is
 * no OAuth access token (an ID token, a SAML assertion asked for by
 * `requestedTokenType`). Whether the route may forward what came is
 * `exchangeAnswerRefusal`'s to say, not the parser's: so every such answer
 * gets one refusal, its own code and log line.
 */
export const EXCHANGE_TOKEN_TYPES = { n_a: () => {} } as const

/** What the route forwards was refused for, by refusal (`exchangeAnswerRefusal`), for its log line. */
const refusedFor = new WeakMap<Error, string>()

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

/** The members of an exchange answer that say what it issued (RFC 8693 §2.2.1), `token_type` lower-cased as oauth4webapi gives it. */
export interface ExchangeAnswer {
  readonly access_token: string
  readonly token_type: string
  readonly issued_token_type?: unknown
}

/**
 * The refusal of an exchange answer whose token the route may not
 * forward, or undefined when it may. `proved`: the request carried the
 * session's DPoP proof, so the token must be bound to its key.
 *
 * `issued_token_type` (RFC 8693 §2.2.1: what was issued) must be the type
 * the route asks for (`requestedTokenType`); for a route that asks for an
 * access token, or for none in particular, any type that is no ID token,
 * refresh token or SAML assertion (an access token and a JWT stand for
 * each other). An answer that says no type is taken as the one asked for,
 * as oauth4webapi takes it: §2.2.1 makes the member REQUIRED, and Keycloak
 * sends it, but a refusal would break an IdP that omits it for nothing the
 * answer shows. Entra ID's on-behalf-of (`grant: jwt-bearer`, RFC 7523)
 * has no such member.
 *
 * `token_type` must be how the route sends it: `DPoP` with a proof, else
 * `Bearer`. `N_A` is the IdP saying the token is not usable as an access
 * token (§2.2.1), so it goes nowhere as one; only a route that asks for
 * another type than an access token, without a proof, takes it. A DPoP
 * token answered to no proof is bound to no key the gateway holds, and a
 * Bearer one answered to a proof is not bound (RFC 9449 §5 lets the
 * client discard it): the upstream would get the first as Bearer, which
 * it must refuse (§7.2), and the second with a proof that protects
 * nothing. Each is the same answer however often it is asked for, so it
 * is no outage to retry: a 502 for the route, the session kept.
 *
 * The token must not be `subjectToken` itself, the one the gateway
 * presented: an IdP whose exchange passes the subject through issued
 * nothing for the route's audience, and the session's login token (or its
 * ID token, when the answer names no type) would reach an upstream
 * configured to get a token of its own, the confusion an exchange is there
 * to prevent (RFC 8693 §1).
 */
export function exchangeAnswerRefusal(
  exchange: ExchangeConfig,
  answer: ExchangeAnswer,
  proved: boolean,
  subjectToken: string,
): GatehouseError | undefined {
  if (answer.access_token === subjectToken)
    return refusal(
      `as its access_token the token it was given to exchange (the session's ${exchange.grant === 'jwt-bearer' ? 'assertion' : exchange.subjectToken === 'id_token' ? 'ID token' : 'access token'}): nothing was issued for this route, and the session's own token must not reach its upstream; make the identity provider issue a token for the route's audience`,
      'the subject token given back',
    )
  const issued = exchange.grant === 'jwt-bearer' ? undefined : answer.issued_token_type
  const asked = exchange.requestedTokenType
  const forAccess = asked === undefined || ACCESS_TYPES.has(asked)
  if (
    issued !== undefined &&
    issued !== asked &&
    !(forAccess && (ACCESS_TYPES.has(issued) || (asked === undefined && !NOT_FOR_UPSTREAM.has(issued))))
  )
    return refusal(
      `issued_token_type ${printable(issued, 100)}, where this route takes ${asked ?? 'an access token'} (RFC 8693 §2.2.1)`,
      'issued_token_type',
    )
  const type = answer.token_type
  const expected = proved ? 'dpop' : 'bearer'
  if (type === expected || (type === 'n_a' && !forAccess && !proved)) return undefined
  if (type === 'n_a')
    return refusal(
      proved
        ? "token_type N_A, to a request with a DPoP proof: no access token, so not bound to the key (RFC 8693 §2.2.1, RFC 9449 §5); a DPoP route must ask for an access token (exchange.requestedTokenType), or set the route's dpop: false"
        : 'token_type N_A: the identity provider says the token is not usable as an access token (RFC 8693 §2.2.1), and the route forwards it as one; allow this client to exchange for an access token at the identity provider, or fix routes[].exchange',
      'token_type N_A',
    )
  if (type === 'dpop')
    return refusal(
      'token_type DPoP, to a request with no DPoP proof: the token is bound to no key the gateway holds (RFC 9449 §5), and an upstream would refuse it as Bearer (§7.2); issue Bearer tokens to this client, or turn dpop on for the provider and the route',
      'token_type DPoP without a proof',
    )
  return refusal(
    "token_type Bearer, to a request with a DPoP proof: the identity provider ignored the proof, so the token is not bound to the key (RFC 9449 §5); enable DPoP-bound access tokens for this client at the identity provider, or set the route's dpop: false",
    'token_type Bearer to a proof',
  )
}

function refusal(what: string, logged: string): GatehouseError {
  const err = gatehouseError(
    'GATEHOUSE_ERR_TOKEN_EXCHANGE_WRONG_TOKEN_TYPE',
    `The identity provider's exchange answer has ${what}. The token is not forwarded, nor kept. The session stays; other routes still work.`,
  )
  refusedFor.set(err, logged)
  return err
}

/**
 * What `exchangeAnswerRefusal` refused `err`'s answer for, in a few words
 * of the answer's own members (never its token), or undefined when `err`
 * is not its refusal.
 */
export function exchangeAnswerRefused(err: unknown): string | undefined {
  return err instanceof Error ? refusedFor.get(err) : undefined
}
