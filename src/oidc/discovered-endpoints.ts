import * as oauth from 'oauth4webapi'
import { printable } from './translate.js'

/** Longest advertised value a message quotes; a real endpoint is far shorter. */
const MAX_QUOTED = 200

/**
 * The endpoints Gatehouse uses itself, outside oauth4webapi (which refuses
 * a plain-http endpoint of its own calls when it is used): the browser is
 * sent to the first and, with the ID token as `id_token_hint`, to the
 * last; logout tokens are verified against the keys at `jwks_uri`.
 */
const OWN_ENDPOINTS = ['authorization_endpoint', 'jwks_uri', 'end_session_endpoint'] as const

/**
 * Refuses a discovery document that names one of OWN_ENDPOINTS as no URL,
 * or as anything but https (http only when the issuer itself is, the
 * loopback development case), or has no `authorization_endpoint` (OIDC
 * Discovery 1.0 §3: required). Over plain http the ID token would travel
 * in clear and a network could serve keys that forge logout tokens; an
 * endpoint that is no URL failed as a TypeError, a 500, at the first
 * sign-in or logout, with discovery reported fine. The refusal is an
 * OperationProcessingError, as oauth4webapi's own of the document are, so
 * it reads the same in the discovery log line, `/readyz` and `check --online`.
 */
export function checkOwnEndpoints(as: oauth.AuthorizationServer, issuer: URL): void {
  if (as.authorization_endpoint === undefined) refuse('advertises no authorization_endpoint')
  const schemes = issuer.protocol === 'http:' ? ['https:', 'http:'] : ['https:']
  for (const field of OWN_ENDPOINTS) {
    const value: unknown = as[field]
    if (value === undefined) continue
    const url = typeof value === 'string' && URL.canParse(value) ? new URL(value) : undefined
    if (url === undefined || !schemes.includes(url.protocol))
      refuse(
        `advertises ${field} "${printable(String(value), MAX_QUOTED)}", which is not an ${schemes.includes('http:') ? 'http or https' : 'https'} URL`,
      )
  }
}

function refuse(what: string): never {
  throw new oauth.OperationProcessingError(
    `the identity provider ${what}; Gatehouse sends the browser to these endpoints (the ID token to end_session_endpoint) and fetches logout-token keys from jwks_uri itself (OpenID Connect Discovery 1.0 §3)`,
    { code: oauth.INVALID_RESPONSE },
  )
}
