import type * as oauth from 'oauth4webapi'

/**
 * The client authentication methods an IdP's token endpoint says it
 * takes. RFC 8414 §2: an absent `token_endpoint_auth_methods_supported`
 * means `client_secret_basic` only; `listed` tells the two apart for
 * messages, since an operator looks in the document for the list.
 */
export function advertisedClientAuth(as: Readonly<oauth.AuthorizationServer>): {
  readonly methods: readonly string[]
  readonly listed: boolean
} {
  const listed = as.token_endpoint_auth_methods_supported
  return listed === undefined
    ? { methods: ['client_secret_basic'], listed: false }
    : { methods: listed, listed: true }
}

/**
 * What to say when the configured method is not among those advertised,
 * or `undefined` when it is. Only said, never refused: IdPs list fewer
 * methods than they take (a list made for the default client, a method
 * enabled per client), and the token endpoint's answer is the judge.
 */
export function unadvertisedClientAuth(
  method: string,
  option: string,
  as: Readonly<oauth.AuthorizationServer>,
):
  | {
      /** Where the file sets the method: `oidc.clientAuth`, `identityProviders[1].clientAuth`. */
      readonly option: string
      readonly method: string
      readonly advertised: readonly string[]
      readonly message: string
    }
  | undefined {
  const { methods, listed } = advertisedClientAuth(as)
  if (methods.includes(method)) return undefined
  const said = listed
    ? `its token_endpoint_auth_methods_supported lists ${methods.join(', ') || 'nothing'}`
    : 'its discovery document lists no token_endpoint_auth_methods_supported, which means client_secret_basic only (RFC 8414 §2)'
  return {
    option: `${option}.clientAuth`,
    method,
    advertised: methods,
    message: `${option}.clientAuth is ${method}, but the identity provider does not advertise it: ${said}. Token requests are sent with ${method} all the same, and an IdP that refuses it answers invalid_client; \`gatehouse check --online\` tries the credentials with each method the IdP lists and names one it accepts`,
  }
}
