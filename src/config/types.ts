import type { StoreConfig } from './store-url.js'

export type { RedisNode, RedisStoreConfig, StoreConfig } from './store-url.js'

export type TokenMode = 'user' | 'optional-user' | 'client' | 'exchange' | 'none'

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS'

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

export interface RouteConfig {
  /** Prefix, matched on whole path segments. Starts with `/`, no trailing slash. */
  readonly path: string
  /** Origin (and optional base path) of the upstream, e.g. `http://orders:8080`. */
  readonly upstream: string
  /** Replaces the matched prefix when forwarding; defaults to `path`. */
  readonly rewritePath: string
  readonly token: TokenMode
  /**
   * Scopes of the route's token: the client-credentials grant's for `client`
   * routes; for `user` and `optional-user`, the refresh-token grant's that
   * mints the route's own down-scoped token.
   */
  readonly scopes: readonly string[]
  /** RFC 8707 resource indicator of the upstream (`user` and `optional-user` routes). */
  readonly resource?: string | undefined
  /**
   * The route's token may be DPoP-bound, and then goes upstream as
   * `Authorization: DPoP` with a proof (RFC 9449 §7): a session's token
   * when the session has a key (made at its sign-in while its provider had
   * `dpop`, and kept for its life whatever the config says later); the
   * gateway's own (`token: client`) while a provider of the route has
   * `dpop`. `false` for `dpop: false` and `token: none` routes.
   */
  readonly dpop: boolean
  /** Refresh and replay once after an upstream 401 `invalid_token` (`user` and `optional-user` routes). */
  readonly retryOnInvalidToken: boolean
  /**
   * The methods the route accepts, in `HTTP_METHODS` order, HEAD with GET;
   * all of them unless `methods` was set.
   */
  readonly methods: readonly HttpMethod[]
  readonly csrf: boolean
  /** `client` routes only: serve callers without a session. */
  readonly anonymous: boolean
  /** Upstream headers/body timeout, ms. */
  readonly timeout: number
  /** Largest request body forwarded, bytes. */
  readonly bodyLimit: number
  /** Proxy WebSocket upgrades within these bounds (src/proxy/websocket/); `false` refuses an upgrade. */
  readonly websocket: WebSocketRoute | false
  /** The upstream may send `Clear-Site-Data`; otherwise it is dropped from its answers. */
  readonly allowClearSiteData: boolean
  /** The upstream may send `NEL` and `Report-To`; otherwise they are dropped from its answers. */
  readonly allowNetworkErrorLogging: boolean
  /** The upstream may send `Strict-Transport-Security`; otherwise it is dropped from its answers. */
  readonly allowStrictTransportSecurity: boolean
  /** The upstream may send `X-Accel-Redirect`, `X-Sendfile`, `X-Lighttpd-Send-File`; otherwise they are dropped from its answers. */
  readonly allowInternalRedirect: boolean
  /** The upstream may send `Service-Worker-Allowed`; otherwise it is dropped from its answers. */
  readonly allowServiceWorkerScope: boolean
  /** Lower-case names of spoofable client headers this route forwards anyway (docs/security.md). */
  readonly passHeaders: readonly string[]
  /** TLS to the upstream: a private CA, a client certificate, a server name. */
  readonly tls?: TlsMaterial | undefined
  /**
   * The providers whose sessions the route serves, by name; `undefined`:
   * every provider its frontend signs in with.
   */
  readonly identityProviders?: readonly string[] | undefined
  /**
   * `client` routes: the provider the gateway's own token comes from, the
   * first the route lists, else the first its frontend signs in with;
   * `undefined`: the first of all.
   */
  readonly clientIdentityProvider?: string | undefined
  /** Present exactly on `token: exchange` routes. */
  readonly exchange?: ExchangeConfig | undefined
}

/**
 * How a `token: exchange` route's token is obtained: the session's subject
 * token, exchanged at the token endpoint (RFC 8693, or RFC 7523 with
 * `requested_token_use=on_behalf_of` for Entra ID's on-behalf-of flow).
 */
export interface ExchangeConfig {
  readonly subjectToken: 'access_token' | 'id_token'
  /** RFC 8693 §2.1 `audience`; `token-exchange` only. */
  readonly audience?: string | undefined
  /** RFC 8693 §2.1 / RFC 8707 `resource`. */
  readonly resource?: string | undefined
  /** Sorted, each once. */
  readonly scopes: readonly string[]
  /** RFC 8693 §2.1 `requested_token_type`; `token-exchange` only, where it defaults to the access-token URI. */
  readonly requestedTokenType?: string | undefined
  readonly grant: 'token-exchange' | 'jwt-bearer'
}

/** The bounds of one route's WebSockets; `websocket: true` takes the defaults. */
export interface WebSocketRoute {
  /** Largest message either side may send, bytes, counted after decompression. */
  readonly maxMessage: number
  /** permessage-deflate (RFC 7692) is negotiated with the browser and the upstream. */
  readonly compression: boolean
  /** How often the gateway pings each leg, ms; a leg silent since the last ping is dead. */
  readonly pingInterval: number
}

/** A JWS algorithm a DPoP key may use (`DPOP_ALGORITHMS`). */
export type DpopAlgorithm =
  | 'ES256'
  | 'ES384'
  | 'ES512'
  | 'PS256'
  | 'PS384'
  | 'PS512'
  | 'RS256'
  | 'Ed25519'
  | 'EdDSA'

/** How the client authenticates to the IdP (RFC 6749 §2.3, RFC 7523, RFC 8705 §2). */
export type ClientAuthMethod =
  | 'client_secret_basic'
  | 'client_secret_post'
  | 'private_key_jwt'
  | 'tls_client_auth'
  | 'self_signed_tls_client_auth'

/** What `check` and the start-up log say of a configured client certificate. */
export interface CertificateFacts {
  /** The file as configured, or the option that held the PEM. */
  readonly source: string
  /** The leaf's subject. */
  readonly subject: string
  /** End of validity, epoch ms: the earliest of the file's chain, leaf or intermediate. */
  readonly notAfter: number
  /** SHA-256 fingerprint, colon-separated hex, as RFC 8705 §3.1's x5t#S256 hashes it. */
  readonly fingerprint256: string
}

/** `oidc.tls` or `routes[].tls`, read and checked at load (src/config/tls-material.ts). */
export interface TlsMaterial {
  /** PEM: the client certificate, leaf first. */
  readonly cert?: string
  /** PEM: its private key. */
  readonly key?: string
  /** PEM: the CAs the peer's certificate must chain to, instead of the system's. */
  readonly ca?: string
  /** SNI and the name the peer's certificate is checked against (routes only). */
  readonly servername?: string
  /** Present with `cert`. */
  readonly certificate?: CertificateFacts
}

/** The private key for `private_key_jwt`, as a private JWK read and checked at load. */
export interface ClientKey {
  readonly jwk: Readonly<Record<string, unknown>>
}

/** One OpenID Provider and the client registered at it (`identityProviders[]`, or `oidc:`). */
export interface IdentityProviderConfig {
  /** Unique: `?idp=`, `/auth/user`, `routes[].identityProviders`, the `idp` metric label. */
  readonly name: string
  /** Where the file sets it, for messages: `oidc`, or `identityProviders[1]`. */
  readonly option: string
  /**
   * Where the IdP sends the browser back, under `auth.basePath`: `/callback`
   * for the `oidc:` shorthand, `/callback/<name>` for each of
   * `identityProviders`. RFC 9700 §4.4.2: a client of several authorization
   * servers gives each its own redirect URI (or relies on RFC 9207 `iss`,
   * which Entra ID and Google do not send), so a code one issued can never
   * be taken to another.
   */
  readonly callbackPath: string
  readonly issuer: string
  readonly clientId: string
  /** Present exactly when `clientAuth` is a `client_secret_*` method. */
  readonly clientSecret: string | undefined
  readonly clientAuth: ClientAuthMethod
  /** Present exactly when `clientAuth` is `private_key_jwt`. */
  readonly clientKey: ClientKey | undefined
  /** `fapi2`: the FAPI 2.0 Security Profile is enforced (src/config/fapi2.ts, src/oidc/fapi2.ts). */
  readonly profile: 'fapi2' | undefined
  /** Mutual TLS with the IdP (RFC 8705); required for the `tls_client_auth` methods. */
  readonly tls: TlsMaterial | undefined
  readonly scopes: readonly string[]
  /** Added to every authorization request; never a protocol parameter Gatehouse owns. */
  readonly authorizationParams: Readonly<Record<string, string>>
  /** `undefined`: fetch userinfo when the IdP advertises an endpoint. */
  readonly userinfo: boolean | undefined
  /** RFC 9126. */
  readonly par: 'auto' | 'required' | 'off'
  /** RFC 9449: bind the session's tokens to a per-session key pair. */
  readonly dpop: boolean
  /** The JWS algorithm of the DPoP keys. */
  readonly dpopAlgorithm: DpopAlgorithm
  /** Total time budget of one back-channel call to the IdP, ms. */
  readonly timeout: number
  /** TCP/TLS connect budget of one back-channel call to the IdP, ms. */
  readonly connectTimeout: number
  /** How long past `timeout` a refresh's answer is still awaited, ms; 0: not at all. */
  readonly lateAnswerWait: number
}

/**
 * One front door of the instance (`frontends[]`), resolved. A config
 * without `frontends:` has exactly one, `name: ''`, made of
 * `server.publicUrl`, `session.cookieName`, `auth.basePath` and `routes`.
 */
export interface FrontendConfig {
  /** `''` for the one frontend of a config without `frontends:`. */
  readonly name: string
  /** Lower-case host name requests must carry (any port); `undefined`: any host. */
  readonly host: string | undefined
  /** Path prefix, no trailing slash; `''`: every path. */
  readonly pathPrefix: string
  /** Origin the browser sees, without trailing slash. */
  readonly publicUrl: string
  /** Derived: `publicUrl` is https, so its cookies are Secure and `__Host-Http-` prefixed. */
  readonly secure: boolean
  /** Derived: final session cookie name; its login-state cookie is `<that>-login`. */
  readonly cookieName: string
  readonly auth: { readonly basePath: string }
  /** Where a sign-in without `returnTo`, and a sign-out, land: `<pathPrefix>/`. */
  readonly home: string
  /** Provider names this frontend may sign in with; `undefined`: all. */
  readonly identityProviders: readonly string[] | undefined
  readonly routes: readonly RouteConfig[]
}

/**
 * The resolved, validated configuration of one Gatehouse instance.
 *
 * Every duration is in milliseconds, every default is filled in, and the
 * object is deeply frozen: code downstream of `loadConfig` never re-checks it.
 */
export interface GatehouseConfig {
  readonly server: {
    readonly host: string
    readonly port: number
    /** Origin the browser sees, without trailing slash, e.g. `https://app.example.com`. */
    readonly publicUrl: string
    /** Derived: `publicUrl` is https, so cookies are Secure and `__Host-Http-` prefixed. */
    readonly secure: boolean
    readonly trustProxy: boolean
    /** Longest wait for a client's request headers, ms (slowloris). */
    readonly headersTimeout: number
    /** Longest wait for a client's whole request, body included, ms. */
    readonly requestTimeout: number
    /** How long an idle keep-alive connection stays open, ms. */
    readonly keepAliveTimeout: number
    /** How long a proxied answer waits for a browser that takes none of its bytes, ms. */
    readonly sendTimeout: number
    /** How long SIGTERM or SIGINT lets requests in flight finish, ms. */
    readonly drainTimeout: number
    /** Largest request header block, bytes; larger gets 431. */
    readonly maxHeaderSize: number
    /** Most WebSockets open on this instance, over every route. */
    readonly maxWebSockets: number
  }
  /**
   * The first of `identityProviders`: the one provider of an `oidc:`
   * config, and the one `/auth/login` uses without `?idp=`.
   */
  readonly oidc: IdentityProviderConfig
  /** Every provider, in configured order; names unique. `oidc:` makes one, named `default`. */
  readonly identityProviders: readonly IdentityProviderConfig[]
  readonly session: {
    /** First secret seals new cookies; the rest only open old ones. Each >= 32 chars. */
    readonly secrets: readonly string[]
    /** `memory`, one Redis, a Sentinel-managed primary, or a Redis Cluster; parsed at load. */
    readonly store: StoreConfig
    /** Sliding expiry, ms. */
    readonly idleTimeout: number
    /** Hard limit from login, ms. */
    readonly absoluteTimeout: number
    /** Derived: final cookie name, `__Host-Http-` prefixed when `server.secure`. */
    readonly cookieName: string
    /** SameSite of the session cookie; the login-state cookie is always `lax`. */
    readonly sameSite: 'lax' | 'strict'
    /** Prefix of every key Gatehouse writes to a shared store. */
    readonly keyPrefix: string
    /** Memory store only: most sessions held; the least recently used is evicted past it. */
    readonly maxSessions: number
    /**
     * Most sessions one user (a `sub` of one issuer and client id) holds at
     * one frontend; a sign-in past it ends the oldest (`http/sessions-per-user.ts`).
     */
    readonly maxPerUser: number
    /** Most WebSockets one session may hold open on one instance, over every route. */
    readonly maxWebSockets: number
    /**
     * Redis store only: most sessions each instance keeps a copy of, kept
     * exact by Redis's invalidation messages; 0 turns the copy off.
     */
    readonly localCache: number
    /** Redis store only: budget of one command to Redis, ms. */
    readonly storeTimeout: number
    /** Claims kept in the session; `undefined` keeps all but protocol claims. */
    readonly claims: readonly string[] | undefined
  }
  readonly tokens: {
    /** Refresh an access token this long before it expires, ms. */
    readonly refreshBefore: number
    /** How long a request may wait on another request's refresh, ms. */
    readonly refreshWait: number
    /**
     * Per session and route, and per client-credentials token: after a
     * refresh or fetch forced by an upstream's 401 `invalid_token`, how
     * long another refused token only passes its 401 on, ms; 0 never holds
     * one back.
     */
    readonly retryCooldown: number
    /** How long a session's refreshes may find the IdP unavailable, and nothing else, before it ends, ms. */
    readonly unavailableLimit: number
    /** The largest token kept, bytes (`tokens.maxSize`): an IdP answer with a larger one is refused. */
    readonly maxSize: number
  }
  readonly auth: {
    readonly basePath: string
    /** `/auth/login` query parameters passed through to the IdP. */
    readonly loginParams: readonly string[]
    /**
     * How the logout reaches the IdP (RP-Initiated Logout 1.0 §2): a POST
     * carrying the ID token, a redirect naming the client instead, or a
     * redirect with the ID token in its URL.
     */
    readonly endSession: 'post' | 'client-id' | 'get'
    /** Per client IP, on login and callback: at most `max` requests per `window` ms. */
    readonly rateLimit: { readonly max: number; readonly window: number }
  }
  readonly csrf: { readonly header: string }
  readonly logging: {
    readonly level: LogLevel
    /** One info line per request; errors, refreshes and upstream failures are logged either way. */
    readonly accessLog: boolean
  }
  readonly metrics: {
    readonly enabled: boolean
    /** Interface of the metrics listener, never the public one. */
    readonly host: string
    /** Port of the metrics listener; 0 picks a free one. */
    readonly port: number
  }
  readonly tracing: {
    /** Export OpenTelemetry traces; the OTEL_* environment variables say where and how. */
    readonly enabled: boolean
    /** Continue a trace from an incoming `traceparent`; otherwise every request starts one. */
    readonly trustIncoming: boolean
  }
  /** Every route of every frontend, for what spans them all (resources asked for at login, certificates). */
  readonly routes: readonly RouteConfig[]
  /** At least one; exactly one, named `''`, without `frontends:`. */
  readonly frontends: readonly FrontendConfig[]
}
