import * as oauth from 'oauth4webapi'
import { LOOPBACK_HOST } from '../config/loopback.js'
import { shapeOf } from './advertised-lists.js'
import { printable } from './translate.js'

/** Longest advertised value a message quotes; a real endpoint is far shorter. */
const MAX_QUOTED = 200

/**
 * The endpoints no sign-in can do without, and those Gatehouse uses itself,
 * outside oauth4webapi (which checks only the endpoint of the call it
 * makes, when it makes it), each with why. The browser is sent to the
 * authorization endpoint and, with the ID token as `id_token_hint`, to the
 * end-session endpoint; logout tokens are verified against the keys at
 * `jwks_uri`; codes and refresh tokens are redeemed at the token endpoint.
 */
const REFUSED_UNLESS_USABLE = {
  authorization_endpoint: 'Gatehouse sends the browser there to sign in',
  token_endpoint: 'Gatehouse redeems codes and refresh tokens there',
  jwks_uri: 'Gatehouse fetches the keys of logout tokens from there itself',
  end_session_endpoint: 'Gatehouse sends the browser there, with the ID token, to sign out',
} as const

/** OpenID Connect Discovery 1.0 §3: required for the authorization code flow. */
const REQUIRED = ['authorization_endpoint', 'token_endpoint'] as const

/**
 * The optional endpoints oauth4webapi calls for Gatehouse: a sign-in and a
 * logout go on without each (RFC 9126 §5, RFC 7009 §5 and OIDC Discovery
 * 1.0 §3 make them optional), as they do when the IdP names none.
 */
const OPTIONAL = [
  'pushed_authorization_request_endpoint',
  'revocation_endpoint',
  'userinfo_endpoint',
] as const

/**
 * The endpoints of `mtls_endpoint_aliases` (RFC 8705 §5) that Gatehouse
 * calls: without an alias, the call goes to the endpoint itself.
 */
const ALIASED = ['token_endpoint', ...OPTIONAL] as const

/**
 * Why `value` is no endpoint Gatehouse may call, or `undefined`: a string
 * that is an absolute https URL, or plain http on a loopback host when the
 * issuer itself is plain http (the only http issuer a config may name).
 * Over http on any other host, the client's credentials, the codes and
 * the tokens would cross a network in clear. Nor one with a user name or
 * password in it: fetch makes no request of such a URL (a TypeError), so
 * every call failed while `/readyz` said ready, its reason quoting them;
 * the URL is quoted without them.
 */
export function endpointProblem(value: unknown, issuer: URL): string | undefined {
  if (typeof value !== 'string') return `as ${shapeOf(value)}`
  if (value === '') return 'as an empty string'
  const url = URL.canParse(value) ? new URL(value) : undefined
  if (url === undefined) return `"${printable(value, MAX_QUOTED)}", which is not an absolute URL`
  if (url.username !== '' || url.password !== '') {
    url.username = ''
    url.password = ''
    return `"${printable(url.href, MAX_QUOTED)}", which carries a user name or password (RFC 9110 §4.2.4), which fetch refuses to send a request to`
  }
  const quoted = `"${printable(value, MAX_QUOTED)}"`
  if (url.protocol === 'https:') return undefined
  if (issuer.protocol === 'https:') return `${quoted}, which is not an https URL`
  if (url.protocol === 'http:' && LOOPBACK_HOST.test(url.hostname)) return undefined
  return `${quoted}, which is neither https nor plain http on a loopback host`
}

/**
 * Refuses a discovery document without an endpoint of REQUIRED, or that
 * names one of REFUSED_UNLESS_USABLE as anything but an endpoint Gatehouse
 * may call (`endpointProblem`). Such a document once made `/readyz` say
 * ready while every sign-in or logout failed: a TypeError, a 500; or a
 * 400 "the login response failed validation" once the user had signed in
 * at the IdP. The refusal is an OperationProcessingError, as oauth4webapi's
 * own of the document are, so it reads the same in the discovery log line,
 * `/readyz` and `check --online`.
 */
export function checkRequiredEndpoints(as: oauth.AuthorizationServer, issuer: URL): void {
  for (const field of REQUIRED)
    if (as[field] === undefined) refuse(`advertises no ${field}`, REFUSED_UNLESS_USABLE[field])
  for (const [field, why] of Object.entries(REFUSED_UNLESS_USABLE)) {
    const value: unknown = as[field]
    if (value === undefined) continue
    const problem = endpointProblem(value, issuer)
    if (problem !== undefined) refuse(`advertises ${field} ${problem}`, why)
  }
}

function refuse(what: string, why: string): never {
  throw new oauth.OperationProcessingError(
    `the identity provider ${what}; ${why} (OpenID Connect Discovery 1.0 §3)`,
    { code: oauth.INVALID_RESPONSE },
  )
}

/**
 * The discovery document with each optional endpoint (OPTIONAL) and each
 * alias Gatehouse calls (ALIASED) that is no endpoint it may call left
 * out, so read as not advertised, and a hint naming each. oauth4webapi
 * checks an endpoint only when it calls it: a `pushed_authorization_request_endpoint`
 * that was a number failed every sign-in with a 400 while `/readyz` said
 * ready, a revocation endpoint every logout's revocation as an outage, a
 * userinfo endpoint every sign-in after the user had signed in at the IdP;
 * an `mtls_endpoint_aliases` that was a string failed every call as a
 * TypeError, one that was a list was not read at all.
 */
export function advertisedEndpoints(
  as: Readonly<oauth.AuthorizationServer>,
  issuer: URL,
): { readonly as: Readonly<oauth.AuthorizationServer>; readonly hints: readonly string[] } {
  const read: Record<string, unknown> = { ...as }
  const hints: string[] = []
  for (const field of OPTIONAL) {
    const value: unknown = as[field]
    if (value === undefined) continue
    const problem = endpointProblem(value, issuer)
    if (problem === undefined) continue
    delete read[field]
    hints.push(
      `the identity provider advertises ${field} ${problem}; read as not advertised (${endpointUse(field)})`,
    )
  }
  const aliases: unknown = as.mtls_endpoint_aliases
  if (aliases !== undefined) {
    if (aliases === null || typeof aliases !== 'object' || Array.isArray(aliases)) {
      delete read.mtls_endpoint_aliases
      hints.push(
        `the identity provider advertises mtls_endpoint_aliases as ${shapeOf(aliases)}, not an object (RFC 8705 §5); read as not advertised: with a client certificate, every call goes to the endpoints themselves`,
      )
    } else {
      const kept: Record<string, unknown> = { ...aliases }
      for (const field of ALIASED) {
        if (!(field in kept)) continue
        const problem = endpointProblem(kept[field], issuer)
        if (problem === undefined) continue
        delete kept[field]
        hints.push(
          `the identity provider advertises mtls_endpoint_aliases.${field} ${problem}; read as not advertised: with a client certificate, that call goes to ${field} itself (RFC 8705 §5)`,
        )
      }
      read.mtls_endpoint_aliases = kept
    }
  }
  return { as: read as oauth.AuthorizationServer, hints }
}

function endpointUse(field: (typeof OPTIONAL)[number]): string {
  switch (field) {
    case 'pushed_authorization_request_endpoint':
      return 'RFC 9126 §5: sign-in sends its request in the URL, as to an identity provider without PAR'
    case 'revocation_endpoint':
      return 'RFC 7009: logout cannot revoke the refresh token, which stays valid until it expires'
    case 'userinfo_endpoint':
      return "OpenID Connect Core §5.3: the session's claims are the ID token's alone"
  }
}
