import type * as oauth from 'oauth4webapi'

/**
 * The lists of a discovery document that the gateway and `check --online`
 * read: RFC 8414 §2, OpenID Connect Discovery 1.0 §3 and RFC 9449 §5.1
 * make each a JSON array of strings. oauth4webapi checks none of them.
 */
const LISTS = [
  'scopes_supported',
  'response_types_supported',
  'grant_types_supported',
  'prompt_values_supported',
  'code_challenge_methods_supported',
  'token_endpoint_auth_methods_supported',
  'token_endpoint_auth_signing_alg_values_supported',
  'revocation_endpoint_auth_methods_supported',
  'id_token_signing_alg_values_supported',
  'dpop_signing_alg_values_supported',
] as const

/**
 * The discovery document with each of its lists that is not a list of
 * strings left out, so read as not listed, and a hint naming each. A
 * string there (`"S256"`) or a number once ended `check --online` in a
 * TypeError, where the IdP, not Gatehouse, is what the operator must fix;
 * at the gateway, a number made `/readyz` and every login of profile
 * fapi2 answer 500, and a string was searched as text (`includes`).
 */
export function advertisedLists(as: Readonly<oauth.AuthorizationServer>): {
  readonly as: Readonly<oauth.AuthorizationServer>
  readonly hints: readonly string[]
} {
  const read: Record<string, unknown> = { ...as }
  const hints: string[] = []
  for (const field of LISTS) {
    const value: unknown = as[field]
    if (value === undefined) continue
    const other = Array.isArray(value) ? value.find((item) => typeof item !== 'string') : value
    if (Array.isArray(value) && other === undefined) continue
    delete read[field]
    hints.push(
      `the identity provider advertises ${field} as ${Array.isArray(value) ? `a list holding ${shapeOf(other)}` : shapeOf(value)}, not a list of strings (RFC 8414 §2); read as not listed`,
    )
  }
  return { as: read as oauth.AuthorizationServer, hints }
}

/** What a JSON value is, for a message that names what the IdP sent instead: `a number`, `null`. */
export function shapeOf(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}
