import { isDeepStrictEqual } from 'node:util'
import * as oauth from 'oauth4webapi'
import type { Dispatcher } from 'undici'
import { routesOfProvider } from '../config/provider-routes.js'
import type { ClientAuthMethod, GatehouseConfig, IdentityProviderConfig } from '../config/types.js'
import { dpopThumbprint, generateDpopKey, publicKeyId } from '../dpop/keys.js'
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
import { advertisedFlags } from './advertised-flags.js'
import { advertisedLists } from './advertised-lists.js'
import { claimsRefusal, sessionClaims, subRefusal } from './claims.js'
import { clientAuthFor } from './client-auth.js'
import { type CredentialProbe, probeCredentials } from './credential-probe.js'
import { advertisedEndpoints, checkRequiredEndpoints } from './discovered-endpoints.js'
import {
  boundTokenTypes,
  dpopIncompatibility,
  rememberingNonces,
  retryOnDpopNonce,
  unboundTokenTypes,
} from './dpop.js'
import { EXCHANGE_TOKEN_TYPES, exchangeAnswerRefusal, exchangeParameters } from './exchange.js'
import { fapi2Incompatibility } from './fapi2.js'
import { idTokenAlgorithms } from './id-token-algorithms.js'
import { createIdpHttp, type IdpHttp } from './idp-http.js'
import { CLOCK_TOLERANCE_SECONDS, refuseIssuedAhead } from './issued-at.js'
import { namingIssuers, unparsedIssuer } from './issuer-mismatch.js'
import { LateAnswers } from './late-answer.js'
import { askedResources, resourcesDigest } from './login-resources.js'
import { LogoutTokenVerifier } from './logout-token.js'
import { parIncompatibility } from './par.js'
import { refuseAnotherUser } from './refreshed-id-token.js'
import { type GrantHolder, type Rotated, rotatedIn, strandedIn, UNKEPT, withRotated } from './rotated.js'
import { expiresAt, refreshLifetime } from './token-lifetime.js'
import { ACCESS_TOKEN_ONLY, refuseOversized, SESSION_TOKENS } from './token-size.js'
import {
  type IdpFailure,
  type IdpOperation,
  idpFailureOf,
  idpUnavailable,
  translateIdpError,
} from './translate.js'
import { refuseUnsendable } from './unsendable-token.js'

/** What the gateway hears of the IdP's answers, beyond each call's own result. */
export interface OidcObserver {
  /** A call to the IdP failed; `failure` says how, never with a token in it. */
  failed?(failure: IdpFailure): void
  /**
   * A call authenticated the client: its credentials work for `operation`.
   * At userinfo, only its TLS client certificate, where one was offered.
   */
  accepted?(operation: IdpOperation): void
  /** A token response gave no lifetime; the token was taken to live `ASSUMED_LIFETIME` seconds (token-lifetime.ts). */
  lifetimeAssumed?(operation: IdpOperation): void
}

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

/**
 * Everything Gatehouse says to the OpenID Provider, through oauth4webapi.
 * The class holds the discovered metadata; until discovery has succeeded,
 * each operation fails with its own "unavailable" 503 (see `translate.ts`).
 */
/** Late refresh answers awaited in this process (late-answer.ts). */
const processLateAnswers = new LateAnswers()

/** What an answer to a request with no proof may carry (dpop.ts). */
const UNBOUND_TYPES = unboundTokenTypes()

export class OidcClient {
  readonly #issuer: URL
  #client: oauth.Client
  readonly #auth: Promise<oauth.ClientAuth>
  readonly #scopes: string
  readonly #resources: readonly string[]
  readonly #oidc: IdentityProviderConfig
  readonly #allowClaims: readonly string[] | undefined
  readonly #authBase: string
  readonly #postLogoutRedirectUri: string
  readonly #http: IdpHttp
  /** Process-wide, so the bound holds across the clients a reload makes; counted per issuer (late-answer.ts). */
  readonly #late = processLateAnswers
  #as: Readonly<oauth.AuthorizationServer> | undefined
  #misadvertised: readonly string[] = []
  /** See `discoveryRefusal`. */
  #refusal: string | undefined
  readonly #now: () => number
  readonly #observer: OidcObserver
  readonly #budgets: Budgets
  /** The proofs of every session's key, and the IdP's nonces. */
  readonly #dpop: DpopProofs
  /** The token types a request with a proof takes (dpop.ts). */
  readonly #boundTypes: oauth.RecognizedTokenTypes
  /** The largest token kept, bytes (`tokens.maxSize`, token-size.ts). */
  readonly #maxTokenSize: number

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
    this.#allowClaims = config.session.claims
    this.#scopes = oidc.scopes.join(' ')
    this.#resources = configuredResources(config, oidc.name)
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
    this.#now = now
    this.#observer = observer
    // Whatever `dpop` says now: a session keeps the binding it signed in
    // with, and one signed in while it was on has a key to prove.
    this.#dpop = new DpopProofs(new DpopNonces(), now)
    this.#boundTypes = boundTokenTypes(oidc.option)
    this.#maxTokenSize = config.tokens.maxSize
    this.#budgets = {
      total: { ms: oidc.timeout, name: 'oidc.timeout' },
      connect: { ms: oidc.connectTimeout, name: 'oidc.connectTimeout' },
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
      const response = await oauth.discoveryRequest(this.#issuer, {
        ...this.#http.options(),
        algorithm: 'oidc',
      })
      const processed = await oauth
        .processDiscoveryResponse(this.#issuer, response)
        .catch((err: unknown) => Promise.reject(unparsedIssuer(err, this.#oidc)))
      checkRequiredEndpoints(processed, this.#issuer)
      // An optional member of the wrong shape is read as not advertised, as
      // check --online reads it: every reader may then take it for what
      // the specification says it is (a list, an endpoint it may call, a boolean).
      const endpoints = advertisedEndpoints(processed, this.#issuer)
      const lists = advertisedLists(endpoints.as)
      const flags = advertisedFlags(lists.as)
      // Last: a document half read is no document (`discovered`), and one
      // refused leaves the last one in use.
      this.#use(flags.as, [...endpoints.hints, ...lists.hints, ...flags.hints])
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
   * lasting.ts `sameDiscovery`), so that the reload need not wait for the
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
    const codeVerifier = oauth.generateRandomCodeVerifier()
    // RFC 9449 §5: a new key for every login, so no two sessions share one.
    // `dpop` decides here, for new logins only; a session keeps its key.
    const dpopKey = this.#oidc.dpop ? await generateDpopKey(this.#oidc.dpopAlgorithm) : undefined
    const params = new URLSearchParams({ ...this.#oidc.authorizationParams, ...extra })
    // The configured max_age is the deployment's bound: a sign-in link may
    // ask for a fresher authentication (a step-up), never an older one.
    const maxAge = strictest(
      maxAgeOf(this.#oidc.authorizationParams.max_age ?? null),
      maxAgeOf(extra.max_age ?? null),
    )
    if (maxAge !== undefined) params.set('max_age', String(maxAge))
    const state: LoginState = {
      state: oauth.generateRandomState(),
      nonce: oauth.generateRandomNonce(),
      codeVerifier,
      returnTo,
      idp: this.#oidc.name,
      startedAt: this.#now(),
      registration: this.registration,
      ...(extra.prompt === 'none' ? { silent: true } : {}),
      ...(dpopKey ? { dpopKey } : {}),
      resources: resourcesDigest(this.#resources),
      ...(maxAge === undefined ? {} : { maxAge }),
    }
    params.set('client_id', this.#client.client_id)
    params.set('redirect_uri', this.redirectUri(uris))
    params.set('response_type', 'code')
    params.set('scope', this.#scopes)
    params.set('state', state.state)
    params.set('nonce', state.nonce)
    params.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier))
    params.set('code_challenge_method', 'S256')
    // RFC 8707 §2: one `resource` parameter per resource, so the grant covers every route's.
    for (const resource of this.#resources) params.append('resource', resource)
    // RFC 9449 §10: binds the code to the session's key. With PAR the
    // request's proof binds it too (§10.1), and the IdP checks both agree.
    if (dpopKey) params.set('dpop_jkt', await dpopThumbprint(dpopKey))
    const url = new URL(as.authorization_endpoint!)
    if (this.#oidc.par !== 'off' && as.pushed_authorization_request_endpoint) {
      try {
        // RFC 9449 §10.1: the pushed request carries a proof of the session's key.
        const pushed = await retryOnDpopNonce(dpopKey, async () => {
          const response = await oauth.pushedAuthorizationRequest(
            as,
            this.#client,
            await this.#auth,
            params,
            await this.#options(dpopKey),
          )
          return oauth.processPushedAuthorizationResponse(as, this.#client, response)
        })
        this.#observer.accepted?.('par')
        url.searchParams.set('client_id', this.#client.client_id)
        url.searchParams.set('request_uri', pushed.request_uri)
      } catch (err) {
        // The pushed request carried the login's state and nonce (RFC 9126
        // §2.1), which an IdP quoting what it refused would put in the log.
        throw this.#failed('par', err, state.state, state.nonce)
      } finally {
        // The key's next use is the callback, which a visitor who only
        // starts sign-ins never reaches: kept ready, each start took a
        // place among the signed-in sessions' (MAX_KEYS) and pushed theirs out.
        if (dpopKey) this.#dpop.forget(publicKeyId(dpopKey))
      }
    } else {
      // Appended, not set: `resource` repeats (RFC 8707 §2).
      for (const [name, value] of params) url.searchParams.append(name, value)
    }
    return { url, state }
  }

  /**
   * Validates the authorization response (state, and `iss` per RFC 9207 when
   * the IdP advertises it), redeems the code with the PKCE verifier and
   * validates the ID token, nonce included.
   */
  async callback(
    currentUrl: URL,
    login: LoginState,
    uris?: RedirectUris,
    abandon?: (refreshToken: string, holder: GrantHolder) => Promise<void>,
  ): Promise<LoginResult> {
    // The key the code was bound to at the login's start (RFC 9449 §10),
    // even if a reload has turned `dpop` off since: the IdP refuses that
    // code without a proof of it. A login that started without one gets a
    // new key, unbound, if `dpop` is on now.
    const dpopKey =
      login.dpopKey ?? (this.#oidc.dpop ? await generateDpopKey(this.#oidc.dpopAlgorithm) : undefined)
    try {
      return await this.#redeem(currentUrl, login, dpopKey, uris, abandon)
    } catch (err) {
      // No session will hold the key: anyone may start a sign-in and come
      // back with a code of their making, and a handle kept ready for each
      // took a place among the signed-in sessions' (MAX_KEYS).
      if (dpopKey) this.#dpop.forget(publicKeyId(dpopKey))
      throw err
    }
  }

  async #redeem(
    currentUrl: URL,
    login: LoginState,
    dpopKey: DpopKey | undefined,
    uris: RedirectUris | undefined,
    abandon: ((refreshToken: string, holder: GrantHolder) => Promise<void>) | undefined,
  ): Promise<LoginResult> {
    const as = this.#metadata('code_exchange')
    let result: oauth.TokenEndpointResponse
    let sentAt = this.#now()
    let stranded: Awaited<ReturnType<typeof strandedIn>>
    try {
      const params = oauth.validateAuthResponse(as, this.#client, currentUrl, login.state)
      result = await retryOnDpopNonce(dpopKey, async () => {
        sentAt = this.#now()
        const response = await oauth.authorizationCodeGrantRequest(
          as,
          this.#client,
          await this.#auth,
          params,
          // RFC 6749 §4.1.3: the same redirect_uri as the authorization request's.
          this.redirectUri(uris),
          login.codeVerifier,
          await this.#options(dpopKey),
        )
        // A 200 whose ID token is then refused (nonce, max_age, aud…) has
        // made a grant all the same, whose refresh token is read from the
        // answer as it came (rotated.ts), to be given back.
        const copy = abandon && response.status === 200 ? response.clone() : undefined
        try {
          const answer = await oauth.processAuthorizationCodeResponse(as, this.#client, response, {
            expectedNonce: login.nonce,
            requireIdToken: true,
            // Asked for with max_age, the authentication must be that recent, and say so.
            ...(login.maxAge === undefined ? {} : { maxAge: login.maxAge }),
            ...this.#bound(dpopKey),
          })
          // Before userinfo: a token too large to keep is not sent on either.
          refuseOversized(answer, SESSION_TOKENS, this.#maxTokenSize)
          refuseUnsendable(answer)
          refuseIssuedAhead(answer, this.#now())
          return answer
        } catch (err) {
          stranded = await strandedIn(copy)
          throw err
        }
      })
      this.#observer.accepted?.('code_exchange')
    } catch (err) {
      if (abandon && stranded !== undefined) await abandon(stranded.refreshToken, stranded.holder)
      // An IdP may echo what it refused: the code and the verifier are as secret as a token.
      throw this.#failed(
        'code_exchange',
        err,
        currentUrl.searchParams.get('code') ?? undefined,
        login.codeVerifier,
      )
    }
    const idClaims = oauth.getValidatedIdTokenClaims(result)!
    let claims: Record<string, unknown>
    try {
      const badSub = subRefusal(idClaims.sub)
      if (badSub) throw refusedAnswer(badSub)
      const userinfo =
        (this.#oidc.userinfo ?? true) && as.userinfo_endpoint
          ? await this.#userinfo(as, result.access_token, idClaims.sub, dpopKey)
          : undefined
      claims = sessionClaims(idClaims, userinfo, this.#allowClaims)
      const badClaims = claimsRefusal(claims)
      if (badClaims) throw refusedAnswer(badClaims)
    } catch (err) {
      // The code is redeemed and a grant made: a refused sign-in leaves no
      // refresh token alive at the IdP that no session will ever hold.
      if (abandon && typeof result.refresh_token === 'string')
        await abandon(result.refresh_token, {
          sub: idClaims.sub,
          sid: typeof idClaims.sid === 'string' ? idClaims.sid : undefined,
        })
      throw err
    }
    return {
      idp: this.#oidc.name,
      registration: this.registration,
      tokens: this.#tokenSet(result, sentAt, 'code_exchange'),
      ...(dpopKey ? { dpopKey } : {}),
      sub: idClaims.sub,
      sid: typeof idClaims.sid === 'string' ? idClaims.sid : undefined,
      claims,
      resources: askedResources(login.resources, this.#resources),
      ...(login.startedAt === undefined ? {} : { startedAt: login.startedAt }),
      // oauth4webapi checked that an auth_time is a number.
      ...(typeof idClaims.auth_time === 'number' ? { authTime: idClaims.auth_time } : {}),
    }
  }

  /**
   * OIDC Core §5.3.2: the userinfo `sub` must equal the ID token's, or the
   * login fails. Classified apart from the code exchange: a 401 here is
   * about the access token, not the client's credentials.
   */
  async #userinfo(as: oauth.AuthorizationServer, accessToken: string, sub: string, dpopKey?: DpopKey) {
    try {
      // A DPoP-bound access token needs its proof at userinfo too (RFC 9449 §7).
      const claims = await retryOnDpopNonce(dpopKey, async () => {
        const response = await oauth.userInfoRequest(
          as,
          this.#client,
          accessToken,
          await this.#options(dpopKey),
        )
        return oauth.processUserInfoResponse(as, this.#client, sub, response)
      })
      // At an mTLS alias the certificate was taken (answers.ts `client_certificate_refused`).
      this.#observer.accepted?.('userinfo')
      return claims
    } catch (err) {
      throw this.#failed('userinfo', err, accessToken)
    }
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
   * a Bearer token, which the session, bound, could not take.
   */
  async refresh(current: TokenSet, audience?: TokenAudience, dpopKey?: DpopKey): Promise<TokenSet> {
    const key = audience === undefined || audience.dpop ? dpopKey : undefined
    const operation = audience
      ? key === undefined && dpopKey !== undefined
        ? 'unbound_route_refresh'
        : 'route_refresh'
      : 'refresh'
    const as = this.#metadata(operation)
    let sentAt = this.#now()
    let rotated: Rotated | undefined
    const params = new URLSearchParams()
    if (audience?.resource !== undefined) params.set('resource', audience.resource)
    if (audience && audience.scopes.length > 0) params.set('scope', audience.scopes.join(' '))
    const redeem = (signal: AbortSignal) => {
      // One budget for the call, the nonce's retry included.
      const http = this.#http.patient(signal)
      return retryOnDpopNonce(key, async () => {
        sentAt = this.#now()
        const response = await oauth.refreshTokenGrantRequest(
          as,
          this.#client,
          await this.#auth,
          current.refreshToken!,
          { ...(await this.#options(key, http)), additionalParameters: params },
        )
        // A 200 has rotated the refresh token: should the rest of it fail
        // validation, the session must still keep the new one (rotated.ts).
        const copy = response.status === 200 ? response.clone() : undefined
        try {
          const answer = await oauth.processRefreshTokenResponse(as, this.#client, response, this.#bound(key))
          refuseOversized(answer, SESSION_TOKENS, this.#maxTokenSize)
          refuseUnsendable(answer)
          refuseIssuedAhead(answer, this.#now())
          refuseAnotherUser(answer, current.idToken)
          return answer
        } catch (err) {
          rotated = await rotatedIn(copy, this.#maxTokenSize, this.#now)
          throw err
        }
      })
    }
    const tokens = (result: oauth.TokenEndpointResponse): TokenSet => {
      const next = this.#tokenSet(result, sentAt, operation)
      return {
        ...next,
        refreshToken: next.refreshToken ?? current.refreshToken,
        // A kept refresh token (RFC 6749 §6: the IdP may leave the old one
        // in use) keeps its expiry unless the answer gives it a new one: an
        // IdP that slides it says so in `refresh_expires_in` (Keycloak's
        // SSO idle), and the old expiry would read a live session as dead
        // to grant weighing. A rotated one has the answer's, or none.
        refreshTokenExpiresAt:
          next.refreshToken === undefined
            ? (this.#refreshExpiresAt(result) ?? current.refreshTokenExpiresAt)
            : next.refreshTokenExpiresAt,
        idToken: next.idToken ?? current.idToken,
      }
    }
    try {
      // The IdP rotates the refresh token whether or not its answer comes
      // in time: past `oidc.timeout` the caller is told, and the answer is
      // still awaited for the session's lock holder to store (late-answer.ts).
      const result = await this.#late.within(
        this.#oidc.timeout,
        this.#oidc.lateAnswerWait > 0,
        redeem,
        (outcome) => ('value' in outcome ? { tokens: tokens(outcome.value) } : { rotated }),
        this.issuer,
      )
      this.#observer.accepted?.(operation)
      return tokens(result)
    } catch (err) {
      const echoed = rotated === UNKEPT ? undefined : rotated?.refreshToken
      throw withRotated(this.#failed(operation, err, current.refreshToken, echoed), rotated)
    }
  }

  /**
   * Exchanges the session's `subjectToken` for the token a `token: exchange`
   * route asks for (RFC 8693; with `grant: jwt-bearer`, Entra ID's
   * on-behalf-of flow), authenticated as every token request is. With the
   * session's `dpopKey` (a `dpop` route), the request carries a proof and
   * the token is bound to the key (RFC 9449 §5).
   */
  async exchange(subjectToken: string, audience: TokenAudience, dpopKey?: DpopKey): Promise<AudienceToken> {
    const as = this.#metadata('token_exchange')
    let sentAt = this.#now()
    const { grantType, parameters } = exchangeParameters(audience.exchange!, subjectToken)
    const key = audience.dpop ? dpopKey : undefined
    try {
      const result = await retryOnDpopNonce(key, async () => {
        sentAt = this.#now()
        const response = await oauth.genericTokenEndpointRequest(
          as,
          this.#client,
          await this.#auth,
          grantType,
          parameters,
          await this.#options(key),
        )
        // Every type is read; which the route may forward is judged below, in one place.
        return oauth.processGenericTokenEndpointResponse(as, this.#client, response, {
          recognizedTokenTypes: EXCHANGE_TOKEN_TYPES,
        })
      })
      // RFC 8693 §2.2.1: a refresh_token the answer may carry is not read,
      // so never kept nor logged; only the access token is taken.
      const wrongType = exchangeAnswerRefusal(audience.exchange!, result, key !== undefined, subjectToken)
      if (wrongType !== undefined) throw wrongType
      refuseOversized(result, ACCESS_TOKEN_ONLY, this.#maxTokenSize)
      refuseUnsendable(result)
      this.#observer.accepted?.('token_exchange')
      const expires = this.#expiresAt(result, sentAt, 'token_exchange')
      return {
        accessToken: result.access_token,
        accessTokenExpiresAt: expires,
        accessTokenLifetime: expires - sentAt,
        ...this.#certificateOf(),
      }
    } catch (err) {
      throw this.#failed('token_exchange', err, subjectToken)
    }
  }

  /**
   * A client-credentials token. With `dpop` (and `oidc.dpop`), bound to a
   * new key of the gateway's own, returned with it: a key per token, so
   * keys rotate as tokens do.
   */
  async clientCredentials(scopes: readonly string[], dpop = false): Promise<CachedToken> {
    const as = this.#metadata('client_credentials')
    let sentAt = this.#now()
    const dpopKey = this.#oidc.dpop && dpop ? await generateDpopKey(this.#oidc.dpopAlgorithm) : undefined
    try {
      const params: Record<string, string> = scopes.length > 0 ? { scope: scopes.join(' ') } : {}
      const result = await retryOnDpopNonce(dpopKey, async () => {
        sentAt = this.#now()
        const response = await oauth.clientCredentialsGrantRequest(
          as,
          this.#client,
          await this.#auth,
          params,
          await this.#options(dpopKey),
        )
        return oauth.processClientCredentialsResponse(as, this.#client, response, this.#bound(dpopKey))
      })
      refuseOversized(result, ACCESS_TOKEN_ONLY, this.#maxTokenSize)
      refuseUnsendable(result)
      this.#observer.accepted?.('client_credentials')
      const expires = this.#expiresAt(result, sentAt, 'client_credentials')
      return {
        accessToken: result.access_token,
        expiresAt: expires,
        lifetime: expires - sentAt,
        ...(dpopKey ? { dpopKey } : {}),
      }
    } catch (err) {
      throw this.#failed('client_credentials', err)
    }
  }

  /** RFC 7009. False, and nothing done, when the IdP has no revocation endpoint. */
  async revoke(refreshToken: string, stop?: AbortSignal): Promise<boolean> {
    const as = this.#metadata('revocation')
    if (!as.revocation_endpoint) return false
    try {
      const auth = await this.#auth
      const options = this.#http.options()
      const response = await oauth.revocationRequest(as, this.#client, auth, refreshToken, {
        ...options,
        // A shutdown's last pass out of time (owed-revocations.ts) cuts the call short of its timeout.
        ...(stop && { signal: AbortSignal.any([options.signal, stop]) }),
        additionalParameters: { token_type_hint: 'refresh_token' },
      })
      await oauth.processRevocationResponse(response)
      this.#observer.accepted?.('revocation')
      return true
    } catch (err) {
      throw this.#failed('revocation', err, refreshToken)
    }
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

  #expiresAt(result: oauth.TokenEndpointResponse, sentAt: number, operation: IdpOperation): number {
    return expiresAt(result, sentAt, () => this.#observer.lifetimeAssumed?.(operation))
  }

  #tokenSet(result: oauth.TokenEndpointResponse, sentAt: number, operation: IdpOperation): TokenSet {
    const expires = this.#expiresAt(result, sentAt, operation)
    return {
      accessToken: result.access_token,
      accessTokenExpiresAt: expires,
      accessTokenLifetime: expires - sentAt,
      ...this.#certificateOf(),
      refreshToken: result.refresh_token,
      refreshTokenExpiresAt: result.refresh_token === undefined ? undefined : this.#refreshExpiresAt(result),
      idToken: result.id_token,
    }
  }

  /** The client certificate a token requested now goes with, to which the IdP may bind it (RFC 8705 §3). */
  #certificateOf(): { certificate?: string } {
    const certificate = this.clientCertificate
    return certificate === undefined ? {} : { certificate }
  }

  /** When the refresh token, new or kept, expires, if the answer says (`refreshLifetime`): from when it came. */
  #refreshExpiresAt(result: oauth.TokenEndpointResponse): number | undefined {
    const seconds = refreshLifetime(result)
    return seconds === undefined ? undefined : this.#now() + seconds * 1000
  }
}

/** A login whose answers passed oauth4webapi's checks but cannot make a session. */
function refusedAnswer(reason: string): GatehouseError {
  return gatehouseError('GATEHOUSE_ERR_LOGIN_FAILED', `The login response failed validation: ${reason}.`)
}

/**
 * A `max_age` parameter's seconds (OIDC Core §3.1.2.1: a non-negative
 * integer); anything else is no number the IdP can honour, so none to check.
 */
function maxAgeOf(value: string | null): number | undefined {
  return value !== null && /^\d{1,10}$/.test(value) ? Number(value) : undefined
}

/** The shorter of two `max_age`s, either maybe absent. */
function strictest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b)
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
