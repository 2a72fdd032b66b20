import type * as oauth from 'oauth4webapi'
import { shapeOf } from './advertised-lists.js'

/**
 * The booleans of a discovery document that the gateway and `check --online`
 * read, each with the specification that makes it a JSON boolean.
 * oauth4webapi checks none of them, and reads
 * `authorization_response_iss_parameter_supported` as any JavaScript truth.
 */
const FLAGS = {
  authorization_response_iss_parameter_supported: 'RFC 9207 §3',
  require_pushed_authorization_requests: 'RFC 9126 §5',
  tls_client_certificate_bound_access_tokens: 'RFC 8705 §3.3',
  backchannel_logout_supported: 'OpenID Connect Back-Channel Logout 1.0 §2.1',
} as const

/**
 * The discovery document with each of its flags that is not a boolean left
 * out, so read as not advertised (each one's default is false), and a hint
 * naming each. A string `"false"` for the `iss` parameter once made
 * oauth4webapi require `iss` in every authorization response, so every
 * sign-in at an IdP that sends none failed with a 400, while
 * `check --online` and the FAPI 2.0 checks read it as no.
 */
export function advertisedFlags(as: Readonly<oauth.AuthorizationServer>): {
  readonly as: Readonly<oauth.AuthorizationServer>
  readonly hints: readonly string[]
} {
  const read: Record<string, unknown> = { ...as }
  const hints: string[] = []
  for (const [field, spec] of Object.entries(FLAGS)) {
    const value: unknown = as[field]
    if (value === undefined || typeof value === 'boolean') continue
    delete read[field]
    hints.push(
      `the identity provider advertises ${field} as ${shapeOf(value)}, not a boolean (${spec}); read as not advertised, which means false`,
    )
  }
  return { as: read as oauth.AuthorizationServer, hints }
}
