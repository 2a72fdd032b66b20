import * as oauth from 'oauth4webapi'
import type { GatehouseConfig } from '../config/types.js'
import { gatehouseError } from '../errors.js'
import type { TokenSet } from '../session/types.js'
import { configuredResources, type TokenAudience } from '../tokens/audience.js'
import type { CachedToken } from '../tokens/types.js'
import { type BackChannel, createBackChannel } from './back-channel.js'
import { translateIdpError } from './translate.js'

/** What a login attempt must remember between `/login` and `/callback`. */
export interface LoginState {
  readonly state: string
  readonly nonce: string
  readonly codeVerifier: string
  readonly returnTo: string
}

export interface LoginResult {
  readonly tokens: TokenSet
  readonly sub: string
  readonly sid: string | undefined
  readonly claims: Record<string, unknown>
}

/** Claims worth showing the SPA; protocol plumbing stays out. */
const protocolClaims = new Set([
  'aud',
  'azp',
  'at_hash',
  'c_hash',
  'nonce',
  'iat',
  'exp',
  'auth_time',
  'acr',
  'amr',
])

/**
 * Everything Gatehouse says to the OpenID Provider, through oauth4webapi.
 * The class holds the discovered metadata; until discovery has succeeded,
 * each operation fails with `GATEHOUSE_ERR_IDP_UNAVAILABLE`.
 */
export class OidcClient {
  readonly #issuer: URL
  readonly #client: oauth.Client
  readonly #auth: oauth.ClientAuth
  readonly #scopes: string
  readonly #resources: readonly string[]
  readonly #redirectUri: string
  readonly #postLogoutRedirectUri: string
  readonly #http: BackChannel
  #as: oauth.AuthorizationServer | undefined
  readonly #now: () => number

  constructor(config: GatehouseConfig, now: () => number = Date.now) {
    this.#issuer = new URL(config.oidc.issuer)
    this.#client = { client_id: config.oidc.clientId }
    this.#auth =
      config.oidc.clientAuth === 'client_secret_post'
        ? oauth.ClientSecretPost(config.oidc.clientSecret)
        : oauth.ClientSecretBasic(config.oidc.clientSecret)
    this.#scopes = config.oidc.scopes.join(' ')
    this.#resources = configuredResources(config.routes)
    this.#redirectUri = `${config.server.publicUrl}${config.auth.basePath}/callback`
    this.#postLogoutRedirectUri = `${config.server.publicUrl}/`
    this.#http = createBackChannel({
      timeoutMs: config.oidc.timeout,
      connectTimeoutMs: config.oidc.connectTimeout,
      allowHttp: this.#issuer.protocol === 'http:',
    })
    this.#now = now
  }

  get discovered(): boolean {
    return this.#as !== undefined
  }

  get issuer(): string {
    return this.#issuer.href
  }

  /** The discovered metadata, once discovery has succeeded. */
  get metadata(): Readonly<oauth.AuthorizationServer> | undefined {
    return this.#as
  }

  get clientId(): string {
    return this.#client.client_id
  }

  /** Fetches and validates the discovery document. Throws a gateway error. */
  async discover(): Promise<void> {
    try {
      const response = await oauth.discoveryRequest(this.#issuer, {
        ...this.#http.options(),
        algorithm: 'oidc',
      })
      this.#as = await oauth.processDiscoveryResponse(this.#issuer, response)
    } catch (err) {
      throw translateIdpError('discovery', err)
    }
  }

  async authorizationUrl(returnTo: string): Promise<{ url: URL; state: LoginState }> {
    const as = this.#metadata()
    const codeVerifier = oauth.generateRandomCodeVerifier()
    const state: LoginState = {
      state: oauth.generateRandomState(),
      nonce: oauth.generateRandomNonce(),
      codeVerifier,
      returnTo,
    }
    const url = new URL(as.authorization_endpoint!)
    url.searchParams.set('client_id', this.#client.client_id)
    url.searchParams.set('redirect_uri', this.#redirectUri)
    url.searchParams.set('response_type', 'code')
    url.searchParams.set('scope', this.#scopes)
    // RFC 8707 §2: one `resource` parameter per resource, so the grant covers every route's.
    for (const resource of this.#resources) url.searchParams.append('resource', resource)
    url.searchParams.set('state', state.state)
    url.searchParams.set('nonce', state.nonce)
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier))
    url.searchParams.set('code_challenge_method', 'S256')
    return { url, state }
  }

  /**
   * Validates the authorization response (state, and `iss` per RFC 9207 when
   * the IdP advertises it), redeems the code with the PKCE verifier and
   * validates the ID token, nonce included.
   */
  async callback(currentUrl: URL, login: LoginState): Promise<LoginResult> {
    const as = this.#metadata()
    try {
      const params = oauth.validateAuthResponse(as, this.#client, currentUrl, login.state)
      const response = await oauth.authorizationCodeGrantRequest(
        as,
        this.#client,
        this.#auth,
        params,
        this.#redirectUri,
        login.codeVerifier,
        this.#http.options(),
      )
      const result = await oauth.processAuthorizationCodeResponse(as, this.#client, response, {
        expectedNonce: login.nonce,
        requireIdToken: true,
      })
      const idClaims = oauth.getValidatedIdTokenClaims(result)!
      const claims: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(idClaims)) if (!protocolClaims.has(k)) claims[k] = v
      return {
        tokens: this.#tokenSet(result),
        sub: idClaims.sub,
        sid: typeof idClaims.sid === 'string' ? idClaims.sid : undefined,
        claims,
      }
    } catch (err) {
      throw translateIdpError('callback', err)
    }
  }

  /**
   * Redeems a refresh token. The IdP may rotate it (RFC 9700 §4.14.2); when
   * it does not return a new one, the old one stays valid and is kept.
   * With an audience, asks for a token for its resource (RFC 8707 §2.2) and
   * scope (RFC 6749 §6); the returned set's access token is that one.
   */
  async refresh(current: TokenSet, audience?: TokenAudience): Promise<TokenSet> {
    const as = this.#metadata('refresh')
    try {
      const params = new URLSearchParams()
      if (audience?.resource !== undefined) params.set('resource', audience.resource)
      if (audience && audience.scopes.length > 0) params.set('scope', audience.scopes.join(' '))
      const response = await oauth.refreshTokenGrantRequest(
        as,
        this.#client,
        this.#auth,
        current.refreshToken!,
        { ...this.#http.options(), additionalParameters: params },
      )
      const result = await oauth.processRefreshTokenResponse(as, this.#client, response)
      const next = this.#tokenSet(result)
      return {
        ...next,
        refreshToken: next.refreshToken ?? current.refreshToken,
        idToken: next.idToken ?? current.idToken,
      }
    } catch (err) {
      throw translateIdpError('refresh', err)
    }
  }

  async clientCredentials(scopes: readonly string[]): Promise<CachedToken> {
    const as = this.#metadata('client_credentials')
    try {
      const params: Record<string, string> = scopes.length > 0 ? { scope: scopes.join(' ') } : {}
      const response = await oauth.clientCredentialsGrantRequest(
        as,
        this.#client,
        this.#auth,
        params,
        this.#http.options(),
      )
      const result = await oauth.processClientCredentialsResponse(as, this.#client, response)
      return { accessToken: result.access_token, expiresAt: this.#expiresAt(result) }
    } catch (err) {
      throw translateIdpError('client_credentials', err)
    }
  }

  /** RFC 7009. A no-op when the IdP has no revocation endpoint. */
  async revoke(refreshToken: string): Promise<void> {
    const as = this.#metadata('revocation')
    if (!as.revocation_endpoint) return
    try {
      const response = await oauth.revocationRequest(as, this.#client, this.#auth, refreshToken, {
        ...this.#http.options(),
        additionalParameters: { token_type_hint: 'refresh_token' },
      })
      await oauth.processRevocationResponse(response)
    } catch (err) {
      throw translateIdpError('revocation', err)
    }
  }

  /** OpenID Connect RP-Initiated Logout 1.0, or `undefined` when the IdP has none. */
  endSessionUrl(idToken: string | undefined): URL | undefined {
    const endpoint = this.#as?.end_session_endpoint
    if (!endpoint) return undefined
    const url = new URL(endpoint)
    if (idToken) url.searchParams.set('id_token_hint', idToken)
    url.searchParams.set('post_logout_redirect_uri', this.#postLogoutRedirectUri)
    url.searchParams.set('client_id', this.#client.client_id)
    return url
  }

  close(): Promise<void> {
    return this.#http.close()
  }

  #metadata(operation: 'refresh' | 'client_credentials' | 'revocation' | 'login' = 'login') {
    if (this.#as) return this.#as
    const code =
      operation === 'refresh'
        ? 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE'
        : operation === 'client_credentials'
          ? 'GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE'
          : 'GATEHOUSE_ERR_IDP_UNAVAILABLE'
    throw gatehouseError(code, 'The identity provider has not been discovered yet. Retry later.')
  }

  #expiresAt(result: oauth.TokenEndpointResponse): number {
    // Without expires_in we cannot know; treat the token as short-lived so
    // it is refreshed soon rather than forwarded long after it died.
    return this.#now() + (result.expires_in ?? 60) * 1000
  }

  #tokenSet(result: oauth.TokenEndpointResponse): TokenSet {
    return {
      accessToken: result.access_token,
      accessTokenExpiresAt: this.#expiresAt(result),
      refreshToken: result.refresh_token,
      idToken: result.id_token,
    }
  }
}
