import { isDeepStrictEqual } from 'node:util'
import * as oauth from 'oauth4webapi'
import type { Dispatcher } from 'undici'
import { routesOfProvider } from '../config/provider-routes.js'
import type { ClientAuthMethod, GatehouseConfig, IdentityProviderConfig } from '../config/types.js'
import { DpopNonces } from '../dpop/nonces.js'
import { DpopProofs } from '../dpop/proofs.js'
import { type GatehouseError, gatehouseError } from '../errors.js'
import type { Budgets } from '../network-cause.js'
import type {
  AudienceToken,
  CachedToken,
  ClientRegistration,
  DpopKey,
  LoginResult,
  LoginState,
  TokenAudience,
  TokenSet,
} from '../types.js'
import { unadvertisedClientAuth } from './advertised-client-auth.js'
import { authorizationRequest } from './authorization-request.js'
import { clientAuthFor } from './client-auth.js'
import { clientCredentialsToken } from './client-credentials.js'
import { type CredentialProbe, probeCredentials } from './credential-probe.js'
import { readDiscoveryDocument } from './discovery-document.js'
import { boundTokenTypes, dpopIncompatibility, rememberingNonces, unboundTokenTypes } from './dpop.js'
import { fapi2Incompatibility } from './fapi2.js'
import { idTokenAlgorithms } from './id-token-algorithms.js'
import type { IdpCalls } from './idp-calls.js'
import { createIdpHttp, type IdpHttp } from './idp-http.js'
import { CLOCK_TOLERANCE_SECONDS } from './issued-at.js'
import { namingIssuers } from './issuer-mismatch.js'
import { LogoutTokenVerifier } from './logout-token.js'
import type { OidcObserver } from './observer.js'
import { parIncompatibility } from './par.js'
import { refreshGrant } from './refresh-grant.js'
import { revokeRefreshToken } from './revocation.js'
import { type Abandon, signIn } from './sign-in.js'
import { exchangeToken } from './token-exchange.js'
import { TokenSets } from './token-sets.js'
import { type IdpOperation, idpFailureOf, idpUnavailable, translateIdpError } from './translate.js'

export type { OidcObserver } from './observer.js'

/**
 * Where the IdP sends a frontend's browser back to (`frontends[]`): each
 * frontend has its own, registered at the IdP. Without them, those of
 * `server.publicUrl` and `auth.basePath`.
 */
export interface RedirectUris {
  /** `<publicUrl><auth.basePath>`: each provider's redirect URI is its `callbackPath` under it. */
  readonly authBase: string
  /** `<publicUrl><pathPrefix>/`. */
  readonly postLogoutRedirectUri: string
}

/** What an answer to a request with no proof may carry (dpop.ts). */
const UNBOUND_TYPES = unboundTokenTypes()

/**
 * Everything Gatehouse says to the OpenID Provider, through oauth4webapi.
 * The class holds the discovered metadata; until discovery has succeeded,
 * each operation fails with its own "unavailable" 503 (see `translate.ts`).
 * Each grant's work is a module of its own, given what it needs of the
 * client (idp-calls.ts): the authorization request (authorization-request.ts),
 * the callback's code redemption and userinfo (sign-in.ts), the refresh
 * (refresh-grant.ts), token exchange (token-exchange.ts), client credentials
 * (client-credentials.ts), revocation (revocation.ts), and the reading of
 * their answers (token-sets.ts); the discovery document's read is
 * discovery-document.ts.
 */

export class OidcClient {
  readonly #issuer: URL
  #client: oauth.Client
  readonly #auth: Promise<oauth.ClientAuth>
  readonly #oidc: IdentityProviderConfig
  readonly #authBase: string
  readonly #postLogoutRedirectUri: string
  readonly #http: IdpHttp
  #as: Readonly<oauth.AuthorizationServer> | undefined
  #misadvertised: readonly string[] = []
  /** See `discoveryRefusal`. */
  #refusal: string | undefined
  readonly #observer: OidcObserver
  readonly #budgets: Budgets
  /** The proofs of every session's key, and the IdP's nonces. */
  readonly #dpop: DpopProofs
  /** The token types a request with a proof takes (dpop.ts). */
  readonly #boundTypes: oauth.RecognizedTokenTypes
  /** What the grants' modules need of this client (idp-calls.ts). */
  readonly #calls: IdpCalls

  /**
   * The client of `provider` (default: the first, `config.oidc`).
   * `dispatcher`: every call to the IdP goes through it instead (tests: undici's MockAgent).
   */
  constructor(
    config: GatehouseConfig,
    now: () => number = Date.now,
    observer: OidcObserver = {},
    dispatcher?: Dispatcher,
    provider: IdentityProviderConfig = config.oidc,
  ) {
    const oidc = provider
    this.#issuer = new URL(oidc.issuer)
    // RFC 8705 §5: with a client certificate, call the IdP's mTLS endpoint aliases when it advertises them.
    this.#client = {
      client_id: oidc.clientId,
      // Its default, said here: the `iat` bound (issued-at.ts) is the same.
      [oauth.clockTolerance]: CLOCK_TOLERANCE_SECONDS,
      ...(oidc.tls?.cert === undefined ? {} : { use_mtls_endpoint_aliases: true }),
    }
    this.#auth = clientAuthFor(oidc.clientAuth, oidc)
    // The key was checked at load; should its import still fail, each call
    // fails when it awaits this, and the rejection must not go unhandled before.
    this.#auth.catch(() => {})
    this.#oidc = oidc
    this.#authBase = `${config.server.publicUrl}${config.auth.basePath}`
    this.#postLogoutRedirectUri = `${config.server.publicUrl}/`
    this.#http = createIdpHttp({
      timeoutMs: oidc.timeout,
      lateAnswerMs: oidc.lateAnswerWait,
      connectTimeoutMs: oidc.connectTimeout,
      allowHttp: this.#issuer.protocol === 'http:',
      tls: oidc.tls,
      ...(dispatcher ? { dispatcher } : {}),
    })
    this.#observer = observer
    // Whatever `dpop` says now: a session keeps the binding it signed in
    // with, and one signed in while it was on has a key to prove.
    this.#dpop = new DpopProofs(new DpopNonces(), now)
    this.#boundTypes = boundTokenTypes(oidc.option)
    this.#budgets = {
      total: { ms: oidc.timeout, name: 'oidc.timeout' },
      connect: { ms: oidc.connectTimeout, name: 'oidc.connectTimeout' },
    }
    this.#calls = {
      oidc,
      issuer: this.#issuer.href,
      scopes: oidc.scopes.join(' '),
      resources: configuredResources(config, oidc.name),
      allowClaims: config.session.claims,
      maxTokenSize: config.tokens.maxSize,
      now,
      observer,
      http: this.#http,
      auth: this.#auth,
      dpop: this.#dpop,
      tokens: new TokenSets(now, observer, this.clientCertificate),
      client: () => this.#client,
      registration: () => this.registration,
      // Bound, not wrapped: a failed call's secrets are gathered once, as before the split.
      metadata: this.#metadata.bind(this),
      options: this.#options.bind(this),
      bound: this.#bound.bind(this),
      failed: this.#failed.bind(this),
    }
  }

  get discovered(): boolean {
    return this.#as !== undefined
  }

  get issuer(): string {
    return this.#issuer.href
  }

  /** A request through this provider's connection (`tls` CA and client certificate, budgets); see IdpHttp. */
  get fetch(): IdpHttp['fetch'] {
    return this.#http.fetch
  }

  /** The provider's budget for one call, ms (`timeout`). */
  get timeout(): number {
    return this.#oidc.timeout
  }

  /** The provider's name (`identityProviders[].name`; `default` for `oidc:`). */
  get name(): string {
    return this.#oidc.name
  }

  /** The discovered metadata, once discovery has succeeded. */
  get metadata(): Readonly<oauth.AuthorizationServer> | undefined {
    return this.#as
  }

  /**
   * A hint for each optional member of the discovered document that had
   * the wrong shape (a list that was no list of strings, an endpoint that
   * was no URL Gatehouse may call, a flag that was no boolean), and so is
   * left out of `metadata` (advertised-lists.ts, discovered-endpoints.ts,
   * advertised-flags.ts).
   */
  get misadvertised(): readonly string[] {
    return this.#misadvertised
  }

  get clientId(): string {
    return this.#client.client_id
  }

  /**
   * Whether the discovered IdP advertises the configured client
   * authentication, or what to say when it does not (advertised-client-auth.ts).
   */
  get unadvertisedClientAuth(): ReturnType<typeof unadvertisedClientAuth> {
    return this.#as && unadvertisedClientAuth(this.#oidc.clientAuth, this.#oidc.option, this.#as)
  }

  /**
   * The SHA-256 fingerprint of the client certificate this provider's calls
   * present (`tls.cert`), to which the IdP may bind the tokens it issues
   * (RFC 8705 §3); `undefined` without one.
   */
  get clientCertificate(): string | undefined {
    return this.#oidc.tls?.certificate?.fingerprint256
  }

  /** The issuer and client id the tokens of this provider's logins are issued to. */
  get registration(): ClientRegistration {
    return { issuer: this.issuer, clientId: this.clientId }
  }

  /** Where the callback of a login at this provider is served, under `auth.basePath`. */
  get callbackPath(): string {
    return this.#oidc.callbackPath
  }

  /** The redirect URI registered for this provider: the gateway's, or a frontend's (`uris`). */
  redirectUri(uris?: RedirectUris): string {
    return `${uris?.authBase ?? this.#authBase}${this.#oidc.callbackPath}`
  }

  /** The DPoP proofs of this client's keys; upstream proofs are made with them too. */
  get dpopProofs(): DpopProofs {
    return this.#dpop
  }

  /** Fetches and validates the discovery document. Throws a gateway error. */
  async discover(): Promise<void> {
    try {
      const { as, hints } = await readDiscoveryDocument(this.#issuer, this.#http, this.#oidc)
      // Last: a document half read is no document (`discovered`), and one
      // refused leaves the last one in use.
      this.#use(as, hints)
    } catch (err) {
      const error = this.#failed('discovery', namingIssuers(err, this.#oidc))
      // A document the IdP serves but Gatehouse refuses is the IdP's to fix,
      // and its words are public: /readyz and the sign-in page say which
      // member. A network failure's are not (addresses, the IdP's topology).
      const failure = idpFailureOf(error)
      this.#refusal = failure?.answer === 'invalid_answer' ? failure.reason : undefined
      throw error
    }
  }

  /**
   * Starts from `running`'s discovered document, as `discover` checked it,
   * when `running` has one: for a client a reload makes for settings
   * discovery does not read (the same issuer, over the same connection;
   * provider-clients.ts `sameDiscovery`), so that the reload need not wait for the
   * provider, which it then discovers again (rediscovery.ts). What this
   * client's own settings make of the document (a FAPI 2.0 profile's ID
   * token algorithms) is made again here.
   */
  startFrom(running: OidcClient): void {
    const as = running.metadata
    if (as !== undefined) this.#use(as, running.misadvertised)
  }

  /** Puts a checked document in use, with the hints its checks gave. */
  #use(as: Readonly<oauth.AuthorizationServer>, hints: readonly string[]): void {
    // oauth4webapi checks the ID token's `alg` against a list here as
    // against one value (its checkSigningAlgorithm), though it types one;
    // test/oidc/fapi2.test.ts holds it to that.
    const algs = idTokenAlgorithms(this.#oidc, as)
    // From this document alone: a reload discovers a discovered IdP again (rediscovery.ts).
    const { id_token_signed_response_alg: _, ...client } = this.#client
    this.#client =
      algs.length > 0 ? { ...client, id_token_signed_response_alg: algs as unknown as string } : client
    this.#misadvertised = hints
    // The same document keeps its object, and what was made from it (a
    // logout token verifier and its keys) stays in use.
    if (!isDeepStrictEqual(as, this.#as)) this.#as = as
    this.#refusal = undefined
  }

  /**
   * Why the last discovery refused the IdP's document (an issuer that is
   * not the configured one, an endpoint no sign-in can use), while none has
   * been discovered; `undefined` when it failed otherwise, or never did.
   */
  get discoveryRefusal(): string | undefined {
    return this.#as === undefined ? this.#refusal : undefined
  }

  /**
   * Whether this gateway can log in through the discovered IdP as
   * configured, or why not.
   */
  get incompatibility(): string | undefined {
    return this.incompatibleWith(this.#as)
  }

  /** Why this client's settings could not sign in against the document `as`; `undefined` when they could. */
  incompatibleWith(as: Readonly<oauth.AuthorizationServer> | undefined): string | undefined {
    return (
      parIncompatibility(this.#oidc, as) ??
      (as && fapi2Incompatibility(this.#oidc, as)) ??
      dpopIncompatibility(this.#oidc, as)
    )
  }

  /**
   * The URL to send the browser to. `extra` (configured `authorizationParams`
   * and the SPA's pass-through parameters, checked by the caller) goes
   * first, so the protocol parameters are always Gatehouse's own. With PAR
   * (RFC 9126 §4), the parameters go over the back channel and the URL
   * carries only `client_id` and `request_uri`.
   */
  async authorizationUrl(
    returnTo: string,
    extra: Readonly<Record<string, string>> = {},
    uris?: RedirectUris,
  ): Promise<{ url: URL; state: LoginState }> {
    const as = this.#metadata('discovery')
    const incompatible = this.incompatibility
    if (incompatible)
      throw gatehouseError('GATEHOUSE_ERR_IDP_INCOMPATIBLE', `Sign-in is misconfigured: ${incompatible}.`)
    return authorizationRequest(this.#calls, as, returnTo, extra, this.redirectUri(uris))
  }

  /**
   * Validates the authorization response (state, and `iss` per RFC 9207 when
   * the IdP advertises it), redeems the code with the PKCE verifier and
   * validates the ID token, nonce included (sign-in.ts).
   */
  callback(currentUrl: URL, login: LoginState, uris?: RedirectUris, abandon?: Abandon): Promise<LoginResult> {
    return signIn(this.#calls, currentUrl, login, this.redirectUri(uris), abandon)
  }

  /**
   * Redeems a refresh token. The IdP may rotate it (RFC 9700 §4.14.2); when
   * it does not return a new one, the old one stays valid and is kept.
   * With an audience, asks for a token for its resource (RFC 8707 §2.2) and
   * scope (RFC 6749 §6); the returned set's access token is that one.
   * With the session's `dpopKey`, the request carries a proof and the new
   * access token is bound to the key (RFC 9449 §5), unless the audience is
   * a `dpop: false` route's, whose token must stay a bearer token. The key
   * is used whatever `dpop` says now: a refresh without a proof would get
   * a Bearer token, which the session, bound, could not take
   * (refresh-grant.ts).
   */
  refresh(current: TokenSet, audience?: TokenAudience, dpopKey?: DpopKey): Promise<TokenSet> {
    return refreshGrant(this.#calls, current, audience, dpopKey)
  }

  /**
   * Exchanges the session's `subjectToken` for the token a `token: exchange`
   * route asks for (RFC 8693; with `grant: jwt-bearer`, Entra ID's
   * on-behalf-of flow), authenticated as every token request is. With the
   * session's `dpopKey` (a `dpop` route), the request carries a proof and
   * the token is bound to the key (RFC 9449 §5) (token-exchange.ts).
   */
  exchange(subjectToken: string, audience: TokenAudience, dpopKey?: DpopKey): Promise<AudienceToken> {
    return exchangeToken(this.#calls, subjectToken, audience, dpopKey)
  }

  /**
   * A client-credentials token. With `dpop` (and `oidc.dpop`), bound to a
   * new key of the gateway's own, returned with it: a key per token, so
   * keys rotate as tokens do (client-credentials.ts).
   */
  clientCredentials(scopes: readonly string[], dpop = false): Promise<CachedToken> {
    return clientCredentialsToken(this.#calls, scopes, dpop)
  }

  /** RFC 7009. False, and nothing done, when the IdP has no revocation endpoint (revocation.ts). */
  revoke(refreshToken: string, stop?: AbortSignal): Promise<boolean> {
    return revokeRefreshToken(this.#calls, refreshToken, stop)
  }

  /**
   * Whether the IdP accepts the client's credentials with `method` (the
   * configured one by default), by requests that cannot succeed and change
   * nothing: a refresh-token grant for a random token, and when its answer
   * says neither, the revocation of a random token (see `probeCredentials`).
   */
  async probeCredentials(method: ClientAuthMethod = this.#oidc.clientAuth): Promise<CredentialProbe> {
    const as = this.#metadata('refresh')
    return probeCredentials(
      {
        as,
        client: this.#client,
        options: this.#http.options(),
        translate: (operation, err) => translateIdpError(operation, err, this.#context()),
        clientSecret: method.startsWith('client_secret_') ? this.#oidc.clientSecret : undefined,
      },
      method,
      await clientAuthFor(method, this.#oidc),
    )
  }

  /**
   * The parameters of an OpenID Connect RP-Initiated Logout 1.0 request
   * (§2), or `undefined` when the IdP has no `end_session_endpoint`. With
   * `idToken` they carry `id_token_hint`; without, `client_id` alone names
   * the client, and `logoutHint` (the OP's own format, §2) the user.
   */
  endSessionRequest(
    idToken: string | undefined,
    logoutHint?: string,
    uris?: RedirectUris,
  ): { readonly endpoint: URL; readonly params: URLSearchParams } | undefined {
    const endpoint = this.#as?.end_session_endpoint
    if (!endpoint) return undefined
    const params = new URLSearchParams()
    if (idToken) params.set('id_token_hint', idToken)
    else if (logoutHint) params.set('logout_hint', logoutHint)
    params.set('post_logout_redirect_uri', uris?.postLogoutRedirectUri ?? this.#postLogoutRedirectUri)
    params.set('client_id', this.#client.client_id)
    return { endpoint: new URL(endpoint), params }
  }

  /**
   * A verifier of this provider's back-channel logout tokens, issued by
   * the discovered `issuer`, against its `jwks_uri` through this provider's
   * connection, and against the client secret for tokens signed with it
   * (logout-token.ts).
   */
  logoutTokenVerifier(
    {
      issuer,
      jwksUri,
      idTokenAlgorithms,
    }: {
      readonly issuer: string
      readonly jwksUri: string
      readonly idTokenAlgorithms?: readonly string[] | undefined
    },
    now?: () => number,
  ): LogoutTokenVerifier {
    return new LogoutTokenVerifier({
      jwksUri,
      issuer,
      clientId: this.clientId,
      clientSecret: this.#oidc.clientSecret,
      idTokenAlgorithms,
      timeoutMs: this.timeout,
      fetch: this.fetch,
      ...(now ? { now } : {}),
    })
  }

  close(): Promise<void> {
    return this.#http.close()
  }

  /**
   * The options of one IdP call: the HTTP client's, and with a DPoP key its
   * proof, with the nonces the IdP sends remembered for the next.
   */
  async #options(dpopKey: DpopKey | undefined, options = this.#http.options()) {
    if (!dpopKey) return options
    return { ...rememberingNonces(options, this.#dpop.nonces), DPoP: await this.#dpop.handle(dpopKey) }
  }

  #metadata(operation: IdpOperation) {
    if (this.#as) return this.#as
    throw idpUnavailable(
      operation,
      this.#refusal === undefined
        ? 'The identity provider has not been discovered yet. Retry later.'
        : `The identity provider has not been discovered: its discovery document was refused (${this.#refusal}). Retry later.`,
    )
  }

  #context(...secrets: (string | undefined)[]) {
    return {
      idp: this.name,
      budgets: this.#budgets,
      secrets: [this.#oidc.clientSecret, ...secrets],
      clientId: this.#client.client_id,
      clientCertificate: this.#oidc.tls?.cert === undefined ? undefined : `${this.#oidc.option}.tls`,
    }
  }

  /** With a key (a proof went with the request), only a bound token is taken; without, only an unbound one. */
  #bound(key: DpopKey | undefined): oauth.ProcessTokenResponseOptions {
    return { recognizedTokenTypes: key ? this.#boundTypes : UNBOUND_TYPES }
  }

  /** The gateway error for a failed call, told to the observer. */
  #failed(operation: IdpOperation, err: unknown, ...secrets: (string | undefined)[]): GatehouseError {
    const error = translateIdpError(operation, err, this.#context(...secrets))
    const failure = idpFailureOf(error)
    if (failure) this.#observer.failed?.(failure)
    return error
  }
}

/**
 * Every resource the routes of provider `idp`'s sessions declare, each
 * once, for the authorization request (RFC 8707 §2): another provider's
 * resource servers, or those of a frontend that does not sign in with it,
 * are not this one's to grant, and a provider that does not know them
 * refuses the whole request (`invalid_target`).
 */
export function configuredResources(config: Pick<GatehouseConfig, 'frontends'>, idp: string): string[] {
  const resources = new Set<string>()
  for (const route of routesOfProvider(config.frontends, idp)) {
    if (route.resource !== undefined && (route.token === 'user' || route.token === 'optional-user'))
      resources.add(route.resource)
  }
  return [...resources]
}
