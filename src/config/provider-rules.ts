/*
 * The rules of the identity providers (`oidc:` or `identityProviders:`)
 * that the schema cannot say, and of the parameters of the authorization
 * request they are sent.
 */
import type { Add } from './finding.js'
import { LOOPBACK_HOST as LOOPBACK } from './loopback.js'
import type { RawProvider } from './providers.js'
import type { RawConfig } from './schema.js'
import { checkScopes } from './scope-token.js'
import { clientIdProblem, clientSecretProblem } from './secret-text.js'
import { checkTimed } from './timer-bounds.js'
import {
  CREDENTIALS_IN_URL,
  carriesCredentials,
  DROPPED_BY_URL_PARSING,
  DROPPED_IN_URL,
  PLACEHOLDER,
  parseUrl,
} from './url-rules.js'

/**
 * Authorization request parameters Gatehouse sets itself (RFC 6749 §4.1.1,
 * RFC 7636 §4.3, OIDC Core §3.1.2.1) or whose value its flow depends on; a
 * configured or passed-through value would change the protocol under it.
 * `request` (RFC 9101) would replace every parameter, state and PKCE
 * included; `request_uri` is PAR's (RFC 9126); `response_mode` other than
 * the default would send the code where `/callback` does not read it.
 */
export const RESERVED_AUTHORIZATION_PARAMS: ReadonlySet<string> = new Set([
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'request',
  'request_uri',
  'response_mode',
])

/**
 * Client authentication (RFC 6749 §2.3.1, RFC 7523 §2.2): clientAuth sends
 * it to the token endpoint. An authorization request goes through the
 * browser, and without PAR in its URL: "MUST NOT be included in the request URI".
 */
const CLIENT_AUTHENTICATION_PARAMS: ReadonlySet<string> = new Set([
  'client_secret',
  'client_assertion',
  'client_assertion_type',
])

/**
 * `resource` (RFC 8707 §2) may be configured, as ADFS needs, but Gatehouse
 * sets it from `routes[].resource`: a browser choosing it would choose which
 * resource servers the session's refresh token is good for.
 */
const BROWSER_MUST_NOT_CHOOSE: ReadonlyMap<string, string> = new Map([
  ['resource', ' (from routes[].resource); a browser must not choose it'],
])

/**
 * Each provider's options, one provider or a list but not both, and names
 * unique; the parameters a browser may add to its sign-in. The index of
 * each provider name, for the routes that name one.
 */
export function checkProviders(
  config: RawConfig,
  providers: readonly RawProvider[],
  add: Add,
): Map<string, number> {
  if (config.oidc !== undefined && config.identityProviders !== undefined) {
    add(['identityProviders'], 'set either oidc (one provider) or identityProviders, not both')
  } else if (providers.length === 0) {
    add(['oidc'], 'is required (or identityProviders: a list of named providers)')
  }
  const names = new Map<string, number>()
  for (const [i, provider] of providers.entries()) {
    checkProvider(provider, add)
    const first = names.get(provider.name)
    if (first === undefined) names.set(provider.name, i)
    else
      add(
        [...provider.path, 'name'],
        `duplicates identityProviders[${first}].name (${provider.name}): names must be unique`,
      )
  }
  config.auth.loginParams.forEach((name, i) => {
    const why = BROWSER_MUST_NOT_CHOOSE.get(name)
    if (RESERVED_AUTHORIZATION_PARAMS.has(name) || why !== undefined) {
      add(
        ['auth', 'loginParams', i],
        `${name} is a protocol parameter Gatehouse sets itself${why ?? ''}; remove it`,
      )
    }
  })

  return names
}

/** The options of one provider (`oidc:` or an entry of `identityProviders:`). */
function checkProvider(provider: RawProvider, add: Add) {
  const { oidc, path: at } = provider
  checkScopes(oidc.scopes, [...at, 'scopes'], add)
  const issuer = parseUrl(oidc.issuer)
  const placeholder = PLACEHOLDER.exec(oidc.issuer)?.[0]
  if (placeholder) {
    add(
      [...at, 'issuer'],
      `still holds the placeholder ${placeholder} from an example: put your identity provider's issuer URL here (see docs/identity-providers.md)`,
    )
  } else if (DROPPED_BY_URL_PARSING.test(oidc.issuer)) {
    add([...at, 'issuer'], DROPPED_IN_URL)
  } else if (!issuer || !['http:', 'https:'].includes(issuer.protocol)) {
    add([...at, 'issuer'], 'must be an https URL')
  } else if (/[?#]/.test(oidc.issuer)) {
    // The text, as `https://idp.example.com?` parses to an empty search yet
    // keeps its `?` in the href the advertised issuer is compared with.
    add(
      [...at, 'issuer'],
      'must have no query or fragment (OpenID Connect Discovery 1.0 §2, RFC 8414 §2): the provider advertises its issuer without them, and discovery refuses any other',
    )
  } else if (carriesCredentials(issuer)) {
    // fetch refuses such a URL outright: discovery would fail as "unavailable".
    add([...at, 'issuer'], CREDENTIALS_IN_URL)
  } else if (issuer.protocol === 'http:' && !LOOPBACK.test(issuer.hostname)) {
    add(
      [...at, 'issuer'],
      'must use https; plain http is allowed only for loopback hosts (localhost, 127.0.0.0/8, [::1])',
    )
  }

  const idPlaceholder = PLACEHOLDER.exec(oidc.clientId)?.[0]
  // Absent when it is missing (the schema says so); the other rules still run.
  const idProblem = typeof oidc.clientId === 'string' ? clientIdProblem(oidc.clientId) : undefined
  if (idProblem) {
    add([...at, 'clientId'], idProblem)
  } else if (idPlaceholder) {
    add(
      [...at, 'clientId'],
      `still holds the placeholder ${idPlaceholder} from an example: put the client id registered at your identity provider here`,
    )
  }

  const { clientAuth, clientSecret, clientKey } = oidc
  if (clientAuth === 'private_key_jwt') {
    if (clientKey === undefined) add([...at, 'clientKey'], 'is required when clientAuth is private_key_jwt')
    if (clientSecret !== undefined)
      add([...at, 'clientSecret'], 'is not used with clientAuth: private_key_jwt; remove it')
  } else if (clientAuth === 'tls_client_auth' || clientAuth === 'self_signed_tls_client_auth') {
    // RFC 8705 §2: the TLS handshake authenticates the client; no secret or key goes in the request.
    if (oidc.tls?.cert === undefined)
      add([...at, 'tls', 'cert'], `is required when clientAuth is ${clientAuth}`)
    if (clientSecret !== undefined)
      add([...at, 'clientSecret'], `is not used with clientAuth: ${clientAuth}; remove it`)
    if (clientKey !== undefined) add([...at, 'clientKey'], 'applies only to clientAuth: private_key_jwt')
  } else {
    if (clientSecret === undefined)
      add([...at, 'clientSecret'], `is required when clientAuth is ${clientAuth}`)
    const malformed = clientSecret === undefined ? undefined : clientSecretProblem(clientSecret)
    if (malformed) add([...at, 'clientSecret'], malformed)
    if (clientKey !== undefined) add([...at, 'clientKey'], 'applies only to clientAuth: private_key_jwt')
  }
  checkTimed(oidc.timeout, [...at, 'timeout'], add, 'the identity provider')
  checkTimed(oidc.connectTimeout, [...at, 'connectTimeout'], add, 'the identity provider')
  // 0 gives a late answer up at once (documented); the patient budget is timeout + this.
  checkTimed(oidc.lateAnswerWait, [...at, 'lateAnswerWait'], add)
  for (const name of Object.keys(oidc.authorizationParams)) {
    if (RESERVED_AUTHORIZATION_PARAMS.has(name)) {
      add([...at, 'authorizationParams', name], 'is a protocol parameter Gatehouse sets itself; remove it')
    } else if (CLIENT_AUTHENTICATION_PARAMS.has(name)) {
      add(
        [...at, 'authorizationParams', name],
        'is client authentication, which clientAuth sends to the token endpoint; an authorization request goes through the browser, in its address bar and history (RFC 6749 §2.3.1): remove it',
      )
    }
  }
  // One the callback cannot read is sent, and an ID token of any age taken:
  // the re-authentication bound it sets would hold only if the IdP kept it.
  const maxAge = oidc.authorizationParams.max_age
  if (maxAge !== undefined && !/^\d{1,10}$/.test(maxAge)) {
    add(
      [...at, 'authorizationParams', 'max_age'],
      `must be a whole number of seconds (OpenID Connect Core §3.1.2.1), such as '300'; got ${JSON.stringify(maxAge)}`,
    )
  }
}
