import { importJWK } from 'jose'
import * as oauth from 'oauth4webapi'
import type { ClientAuthMethod, GatehouseConfig } from '../config/types.js'
import { certificateAlert } from '../tls/handshake-errors.js'
import type { IdpAnswer } from './answers.js'

type OidcConfig = GatehouseConfig['oidc']

/**
 * The characters the WHATWG `application/x-www-form-urlencoded` serializer
 * leaves as they are: a secret made only of these goes on the wire unchanged.
 */
export const FORM_SAFE = /^[A-Za-z0-9*\-._]*$/

/** `value` as the WHATWG form serializer writes it (URL Standard §5.2). */
export function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1)
}

/**
 * RFC 6749 §2.3.1 HTTP Basic: the id and secret are form-encoded, then
 * joined and base64-encoded. oauth4webapi's own `ClientSecretBasic` also
 * escapes `- _ . ! ~ * ' ( )`, which the WHATWG serializer leaves alone;
 * both decode to the same value, but many OPs compare the credentials
 * without decoding them, and then only the WHATWG form of a secret such
 * as `my-bff-secret` (unchanged on the wire) matches.
 */
export function formClientSecretBasic(clientSecret: string): oauth.ClientAuth {
  return (_as, client, _body, headers) => {
    headers.set(
      'authorization',
      `Basic ${btoa(`${formEncode(client.client_id)}:${formEncode(clientSecret)}`)}`,
    )
  }
}

/** The client authentication for `method` with the configured secret or key. */
export async function clientAuthFor(method: ClientAuthMethod, oidc: OidcConfig): Promise<oauth.ClientAuth> {
  if (method === 'private_key_jwt') {
    const { jwk } = oidc.clientKey!
    const key = (await importJWK({ ...jwk }, jwk.alg as string)) as CryptoKey
    const thumbprints = Object.fromEntries(
      ['x5t', 'x5t#S256'].filter((name) => typeof jwk[name] === 'string').map((name) => [name, jwk[name]]),
    )
    return oauth.PrivateKeyJwt(typeof jwk.kid === 'string' ? { key, kid: jwk.kid } : key, {
      [oauth.modifyAssertion]: (header) => Object.assign(header, thumbprints),
    })
  }
  // RFC 8705 §2: the certificate of the TLS handshake (idp-http.ts) authenticates; the body names the client.
  if (method === 'tls_client_auth' || method === 'self_signed_tls_client_auth') return oauth.TlsClientAuth()
  return method === 'client_secret_post'
    ? oauth.ClientSecretPost(oidc.clientSecret!)
    : formClientSecretBasic(oidc.clientSecret!)
}

/** The methods Gatehouse could authenticate with, given what is configured. */
export function usableMethods(oidc: OidcConfig): ClientAuthMethod[] {
  if (oidc.clientKey) return ['private_key_jwt']
  if (oidc.clientAuth === 'tls_client_auth' || oidc.clientAuth === 'self_signed_tls_client_auth')
    return ['tls_client_auth', 'self_signed_tls_client_auth']
  return ['client_secret_basic', 'client_secret_post']
}

/** The option that holds the credential `method` authenticates with. */
function credentialOption(method: ClientAuthMethod): string {
  if (method === 'private_key_jwt') return 'clientKey'
  if (method === 'tls_client_auth' || method === 'self_signed_tls_client_auth') return 'tls.cert'
  return 'clientSecret'
}

/**
 * What to check when the IdP refuses the gateway's credentials, most likely
 * first, for the operator reading the error line. `alert`: the TLS alert
 * of a `client_certificate_refused`.
 */
export function refusalHint(oidc: OidcConfig, answer: IdpAnswer, grant?: string, alert?: string): string {
  if (answer === 'client_certificate_refused') return certificateRefusalHint(oidc, alert)
  if (answer === 'unauthorized_client') {
    // RFC 6749 §5.2 means an authenticated client; some providers (Glewlwyd) answer it to a wrong credential too.
    return `either the client is not allowed this grant${grant ? ` (${grant})` : ''}: allow it for client ${oidc.clientId} at the identity provider (its grant_types); or, at providers that answer unauthorized_client to refused credentials too, the credentials are wrong: check ${oidc.option}.${credentialOption(oidc.clientAuth)} and that ${oidc.option}.clientAuth (${oidc.clientAuth}) is a method the provider allows this client.`
  }
  switch (oidc.clientAuth) {
    case 'private_key_jwt':
      return `check that the identity provider has the public key of ${oidc.option}.clientKey (its JWK or certificate, same kid), that the client is registered for private_key_jwt, and that the clock of this host is right: assertions carry iat and exp, and a skew beyond the tolerance of the provider is refused.`
    case 'tls_client_auth':
      return `check that the identity provider trusts the CA of the certificate in ${oidc.option}.tls.cert, that client ${oidc.clientId} is registered for tls_client_auth with the certificate's subject (tls_client_auth_subject_dn or a SAN), and that the provider sees the certificate: a TLS terminator in front of it must pass it on.`
    case 'self_signed_tls_client_auth':
      return `check that client ${oidc.clientId} is registered for self_signed_tls_client_auth with the certificate of ${oidc.option}.tls.cert in its jwks (x5c), and that the provider sees the certificate: a TLS terminator in front of it must pass it on.`
    case 'client_secret_post':
      return `check ${oidc.option}.clientSecret and ${oidc.option}.clientId, and that client ${oidc.clientId} is registered for client_secret_post.`
    case 'client_secret_basic': {
      const escaped = !FORM_SAFE.test(oidc.clientSecret ?? '') || !FORM_SAFE.test(oidc.clientId)
      return escaped
        ? `check ${oidc.option}.clientSecret first; then the Basic encoding: the id or secret has characters outside [A-Za-z0-9*-._], which Gatehouse escapes (RFC 6749 §2.3.1) and an identity provider that compares credentials without decoding them refuses. Use clientAuth: client_secret_post, or a secret of those characters only. \`gatehouse check --online\` tries each method.`
        : `check ${oidc.option}.clientSecret and ${oidc.option}.clientId, and that client ${oidc.clientId} is registered for client_secret_basic; \`gatehouse check --online\` tries each method the provider advertises.`
    }
  }
}

/**
 * The certificate the IdP's TLS server refused, by its file, subject and
 * dates (never its key), the alert it refused it with, and what mends it.
 */
function certificateRefusalHint(oidc: OidcConfig, alert: string | undefined): string {
  const refusal = alert === undefined ? undefined : certificateAlert(alert)
  const alerted = `alert ${alert ?? 'unknown'}`
  const facts = oidc.tls?.certificate
  if (!facts) {
    return `the TLS server of the identity provider asks for a client certificate (${alerted}) and ${oidc.option}.tls has none: set ${oidc.option}.tls.cert and key to the one registered for client ${oidc.clientId} (RFC 8705).`
  }
  const which = `${oidc.option}.tls.cert (${facts.source}: ${facts.subject}, valid until ${new Date(facts.notAfter).toISOString()})`
  const remedy = refusal?.remedy ?? 'check that the server trusts its CA and that it is valid'
  return `the TLS server of the identity provider (or a terminator in front of it) refused the certificate of ${which} in the handshake with ${alerted}: ${remedy}. A renewed certificate file is read on reload (SIGHUP); /readyz recovers at the first call the provider accepts.`
}
