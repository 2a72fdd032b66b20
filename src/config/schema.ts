import { type Static, Type } from '@sinclair/typebox'
import { DURATION_PATTERN, SIZE_PATTERN } from './duration.js'
import { FRONTEND_HOST_PATTERN } from './frontend-host.js'
import { OidcTlsSchema, RouteTlsSchema } from './tls-schema.js'

/**
 * The schema of `routes.yaml`, as users write it. `loadConfig` validates
 * against it, fills the defaults below, and resolves it into the frozen
 * `GatehouseConfig`. `schema/routes.schema.json` is generated from it.
 */
export const DEFAULTS = {
  host: '0.0.0.0',
  port: 3000,
  oidcTimeout: '10s',
  oidcConnectTimeout: '3s',
  oidcLateAnswerWait: '30s',
  idleTimeout: '30m',
  absoluteTimeout: '12h',
  maxSessions: 100_000,
  // Per user of a provider, per frontend: more than a person's browsers and
  // devices, far fewer than a client could pile up by signing in again and again.
  maxPerUser: 50,
  localCache: 10_000,
  storeTimeout: '1s',
  refreshBefore: '30s',
  refreshWait: '10s',
  retryCooldown: '1m',
  unavailableLimit: '5m', // then a 401 that sends the user to sign in, never a 503 for hours
  // 16 KiB: every access token goes out in an upstream request's head, and
  // Node's HTTP server takes 16 KiB for the whole head by default (nginx
  // 8 KiB per header line, Envoy 60 KiB in all), so a larger token reaches
  // few upstreams; Entra ID's tokens, at most 200 groups, stay under 12 KiB.
  maxTokenSize: '16kb',
  routeTimeout: '30s',
  drainTimeout: '30s', // the default routeTimeout: a request in flight at SIGTERM is not cut off sooner
  bodyLimit: '1mb',
  metricsHost: '127.0.0.1',
  metricsPort: 9464, // the OpenTelemetry Prometheus exporter's port
  loginParams: ['prompt', 'login_hint', 'ui_locales', 'acr_values'],
  websocketMaxMessage: '1mb', // 1 MiB, as bodyLimit
  websocketPingInterval: '30s',
  maxWebSockets: 10_000, // per instance
  sessionMaxWebSockets: 16, // per session, per instance
} as const

/**
 * `session.maxPerUser` at most: every sign-in reads each of its user's
 * sessions (one Redis read each), so a user at the bound costs that many
 * reads per sign-in; and a bound no one reaches is no bound.
 */
export const MAX_PER_USER_CEILING = 10_000

const Duration = (description: string, defaultValue?: string) =>
  Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: DURATION_PATTERN })], {
    description: `${description} A duration: 500ms, 30s, 5m, 12h, 1d, or a number of seconds.`,
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
  })

const strict = { additionalProperties: false } as const

/** The methods a proxy route can serve (@fastify/http-proxy registers these). */
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

/**
 * JWS algorithms a DPoP key may use (RFC 9449 §4.2: asymmetric only), as
 * WebCrypto makes and oauth4webapi signs them. ES256 is the default: the
 * one every DPoP server must support in practice, and the cheapest to sign.
 */
export const DPOP_ALGORITHMS = [
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'RS256',
  'Ed25519',
  // The same Ed25519 key, named as RFC 8037 names its signatures: many IdPs list only this.
  'EdDSA',
] as const

export const ServerSchema = Type.Object(
  {
    host: Type.String({
      default: DEFAULTS.host,
      description:
        'Interface to listen on: an IP address (0.0.0.0, ::) or a host name, without brackets or a port.',
    }),
    port: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: DEFAULTS.port,
      description: 'Port to listen on.',
    }),
    publicUrl: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "Origin the browser sees, e.g. https://app.example.com; plain http only for loopback development. With https, cookies are Secure and __Host-Http- prefixed. Required without frontends; with them, each frontend has its own and this defaults to the first's.",
      }),
    ),
    trustProxy: Type.Boolean({
      default: false,
      description:
        'Trust X-Forwarded-* from the one proxy in front: the client address is the last X-Forwarded-For entry, the peer that proxy saw (see docs/deployment.md).',
    }),
    headersTimeout: Duration(
      "Longest wait for a client's request headers (slowloris); at most requestTimeout.",
      '10s',
    ),
    requestTimeout: Duration("Longest wait for a client's whole request, body included.", '60s'),
    keepAliveTimeout: Duration(
      'How long an idle keep-alive connection stays open; keep it above the load balancer idle timeout. At most 1d.',
      '72s',
    ),
    sendTimeout: Duration(
      'How long a proxied answer waits for a browser that has stopped taking its bytes before the connection is closed and the upstream call given up (slow read); a browser that keeps reading is not cut off while its socket makes room for more of the answer within each timeout, which the kernel does in steps of about a third of the socket send buffer (as for the send_timeout of nginx). More than 0, at most 1d.',
      '60s',
    ),
    drainTimeout: Duration(
      "How long SIGTERM or SIGINT lets requests in flight finish before the process exits anyway, with exit 1; at least the longest route's timeout, or a request on it may be cut off. WebSockets still closing shortly before it ends are dropped, and do not make the exit 1. An orchestrator's grace period must cover it and any preStop delay. At most 24h.",
      DEFAULTS.drainTimeout,
    ),
    maxHeaderSize: Type.Union([Type.Integer({ minimum: 1024 }), Type.String({ pattern: SIZE_PATTERN })], {
      default: '16kb',
      description: 'Largest request header block; larger requests get 431.',
    }),
    maxWebSockets: Type.Integer({
      minimum: 1,
      default: DEFAULTS.maxWebSockets,
      description:
        'Most WebSockets open on this instance, over every route; one more upgrade gets 503 websocket_capacity with Retry-After.',
    }),
  },
  { ...strict, description: 'Where Gatehouse listens and how the browser reaches it.' },
)

export const OidcSchema = Type.Object(
  {
    issuer: Type.String({
      minLength: 1,
      description:
        'Issuer URL of the OpenID Provider, without user:password@, a query or a fragment; discovery document at /.well-known/openid-configuration.',
    }),
    clientId: Type.String({
      minLength: 1,
      description:
        'The confidential client registered at the IdP. Sent in the clear (in the login URL): a control character (a line break from a file) or a PEM block in it is an error.',
    }),
    clientSecret: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'The client secret, for client_secret_basic and client_secret_post. Use ${OIDC_CLIENT_SECRET}. Printable ASCII (RFC 6749 Appendix A.2): a line break or another control character in it is an error (a trailing newline is what a file or echo leaves); a space at either end, or a character outside ASCII, gets a warning.',
      }),
    ),
    clientAuth: Type.Union(
      [
        Type.Literal('client_secret_basic'),
        Type.Literal('client_secret_post'),
        Type.Literal('private_key_jwt'),
        Type.Literal('tls_client_auth'),
        Type.Literal('self_signed_tls_client_auth'),
      ],
      {
        default: 'client_secret_basic',
        description:
          'How the client authenticates at the token, revocation and PAR endpoints; private_key_jwt (RFC 7523) signs with clientKey; tls_client_auth (PKI) and self_signed_tls_client_auth (RFC 8705 §2) present the certificate of oidc.tls.',
      },
    ),
    clientKey: Type.Optional(
      Type.Union(
        [
          Type.Object({ file: Type.String({ minLength: 1 }) }, strict),
          Type.Object({ pem: Type.String({ minLength: 1 }) }, strict),
          Type.Object(
            { jwk: Type.Union([Type.String({ minLength: 1 }), Type.Record(Type.String(), Type.Unknown())]) },
            strict,
          ),
        ],
        {
          description:
            'The private key for private_key_jwt: { file: path } to a PEM or JWK file (relative to the config file), { pem: ${OIDC_CLIENT_KEY} }, or { jwk: ${OIDC_CLIENT_JWK} } (JSON text or a mapping). RSA, EC (P-256/384/521) or Ed25519.',
        },
      ),
    ),
    tls: Type.Optional(OidcTlsSchema),
    authorizationParams: Type.Record(Type.String({ minLength: 1 }), Type.String(), {
      default: {},
      description:
        'Extra parameters on every authorization request, e.g. prompt: consent, access_type: offline, audience: https://api.example.com. Protocol parameters Gatehouse sets itself are refused, as is client authentication (client_secret, client_assertion), which goes to the token endpoint, never through the browser. A max_age must be whole seconds: the callback then requires an ID token auth_time that recent, and a max_age from a sign-in link (auth.loginParams) can only shorten it.',
    }),
    userinfo: Type.Optional(
      Type.Boolean({
        description:
          'Fetch userinfo at login and merge its claims over the ID token claims. Default: on when the IdP advertises a userinfo_endpoint.',
      }),
    ),
    par: Type.Union([Type.Literal('auto'), Type.Literal('required'), Type.Literal('off')], {
      default: 'auto',
      description:
        'Pushed Authorization Requests (RFC 9126): auto uses PAR when the IdP advertises it; required refuses to log in (and /readyz fails) when it does not; off never uses it, and so refuses to log in (and /readyz fails) when the IdP requires it (require_pushed_authorization_requests).',
    }),
    profile: Type.Optional(
      Type.Union([Type.Literal('fapi2')], {
        description:
          'fapi2: the FAPI 2.0 Security Profile for a confidential client (docs/fapi2.md): PAR required, private_key_jwt or mTLS client auth and no secret, DPoP- or mTLS-bound tokens, the iss response parameter (RFC 9207) required, ID tokens PS256/ES256/EdDSA only, TLS except on loopback. check enforces it; check --online compares it with the IdP.',
      }),
    ),
    dpop: Type.Boolean({
      default: false,
      description:
        "DPoP (RFC 9449): bind the session's tokens to a key pair made at each login and kept sealed in the session record; every token request, and every upstream request of a user route, carries a proof. It decides for new logins only: a session keeps the binding it signed in with until it ends, so turning it off or on by a reload leaves live sessions as they are.",
    }),
    dpopAlgorithm: Type.Union(
      DPOP_ALGORITHMS.map((alg) => Type.Literal(alg)),
      {
        default: 'ES256',
        description:
          "Algorithm of the DPoP keys (with dpop: true); one of the IdP's dpop_signing_alg_values_supported, which check --online compares.",
      },
    ),
    scopes: Type.Array(Type.String({ minLength: 1 }), {
      default: ['openid', 'profile', 'offline_access'],
      description:
        'Scopes requested at login; offline_access is needed for refresh tokens. Each item is one scope (RFC 6749 §3.3: printable ASCII without spaces, " or \\).',
    }),
    timeout: Duration(
      'Total budget of one back-channel call to the IdP, kept to within a few milliseconds. More than 0, at most 1d.',
      DEFAULTS.oidcTimeout,
    ),
    lateAnswerWait: Duration(
      "How long past `timeout` the answer to a refresh is still awaited, holding the session's refresh lock, to be stored when it comes: the IdP rotates the refresh token whether or not its answer arrives in time, and the next redemption of the spent one would revoke the grant. The request that asked gets its 503 at `timeout`; the session's next refresh waits for the answer meanwhile. At most 1,024 are awaited at once per identity provider (issuer) in a process, so a slow provider's cannot crowd out another's. 0 gives the answer up at `timeout`; at most 1d.",
      DEFAULTS.oidcLateAnswerWait,
    ),
    connectTimeout: Duration(
      "Connect budget of one back-channel call to the IdP, TLS handshake included. Under 5s it is kept to within a few milliseconds; from 5s on, undici's coarser timer keeps it, and may fire up to a second late. More than 0, at most 1d.",
      DEFAULTS.oidcConnectTimeout,
    ),
  },
  {
    ...strict,
    description:
      'The OpenID Provider and this client: the one-provider shorthand of identityProviders, named default.',
  },
)

/**
 * The name of the one provider `oidc:` configures: what `/auth/user` says
 * and `?idp=` takes, and the provider of a session stored before sessions
 * recorded theirs.
 */
export const SHORTHAND_PROVIDER = 'default'

/** What a provider name may be: it appears in a URL (`?idp=`), store keys and metric labels. */
export const PROVIDER_NAME_PATTERN = '^[a-z0-9][a-z0-9_-]*$'

const ProviderName = (description: string) =>
  Type.String({ pattern: PROVIDER_NAME_PATTERN, maxLength: 32, description })

/** One entry of `identityProviders:`: a name and every option of `oidc:`. */
export const IdentityProviderSchema = Type.Object(
  {
    name: ProviderName(
      'Unique name of the provider: GET /auth/login?idp=<name> signs in with it, /auth/user reports it, routes[].identityProviders lists it, metrics label it, and its redirect URI is publicUrl + auth.basePath + /callback/<name>: renaming it means registering the new one at the provider first. Lower-case letters, digits, - and _, at most 32.',
    ),
    ...OidcSchema.properties,
  },
  {
    ...strict,
    description: 'One OpenID Provider and the client registered there; every option of oidc: applies.',
  },
)

export const SessionSchema = Type.Object(
  {
    secret: Type.Optional(
      Type.String({
        description:
          'Seals cookies, and the client-credentials tokens and index names kept in Redis; at least 32 characters. Use ${SESSION_SECRET}. Whitespace at either end (a trailing newline from a file) gets a warning: it is part of the secret, and every instance must read it alike.',
      }),
    ),
    secrets: Type.Optional(
      Type.Array(Type.String(), {
        minItems: 1,
        description:
          'Key rotation: the first seals new cookies and cached client-credentials tokens and names new index entries; the others only open or find old ones. An empty entry after the first is left out, so `"${SESSION_SECRET_SECOND:-}"` can hold its place between rotations.',
      }),
    ),
    store: Type.String({
      default: 'memory',
      description:
        'memory; or, to share sessions across instances, redis://host:port/db (rediss:// for TLS), redis+sentinel://[user:pass@]host:port[,host:port…]/master[/db] (rediss+sentinel:// for TLS), or redis+cluster://[user:pass@]host:port[,host:port…] (rediss+cluster:// for TLS).',
    }),
    idleTimeout: Duration('Sliding expiry of an unused session.', DEFAULTS.idleTimeout),
    absoluteTimeout: Duration(
      'Hard limit on a session from login; not shorter than idleTimeout.',
      DEFAULTS.absoluteTimeout,
    ),
    cookieName: Type.String({
      pattern: '^[A-Za-z0-9_-]+$',
      default: 'gatehouse',
      description:
        'Session cookie name; becomes __Host-Http-<name> when publicUrl is https (each sign-in in progress has a login-state cookie <that>-login.<hash>).',
    }),
    sameSite: Type.Union([Type.Literal('lax'), Type.Literal('strict')], {
      default: 'lax',
      description:
        "SameSite of the session cookie. strict: the browser sends it only on requests this site starts, so a link from another site opens the SPA signed out until its first API call; the callback then lands on returnTo through a page of this origin, since the IdP's redirect is cross-site. The login-state cookie stays lax: it must come back with the IdP's redirect.",
    }),
    keyPrefix: Type.String({
      default: 'gatehouse:',
      description:
        "Prefix of every key in a shared store; without { or }, which would start a Redis Cluster hash tag of its own and split a session's keys over slots.",
    }),
    maxSessions: Type.Integer({
      minimum: 1,
      default: DEFAULTS.maxSessions,
      description:
        'Memory store only: most sessions held; the least recently used is evicted past it, its user signed out, told by a GATEHOUSE_SESSION_EVICTED warning once a minute.',
    }),
    maxPerUser: Type.Integer({
      minimum: 1,
      maximum: MAX_PER_USER_CEILING,
      default: DEFAULTS.maxPerUser,
      description: `Most sessions one user may hold at one frontend: the same sub at the same issuer and client id, over every instance sharing the store. A sign-in past it ends the user's oldest sessions there (first any whose refresh token has expired), as a logout would (their WebSockets close with 4401); each sign-in reads the user's sessions, so at most ${MAX_PER_USER_CEILING}.`,
    }),
    maxWebSockets: Type.Integer({
      minimum: 1,
      default: DEFAULTS.sessionMaxWebSockets,
      description:
        'Most WebSockets one session may hold open on one instance, over every route; one more upgrade gets 429 too_many_websockets.',
    }),
    localCache: Type.Integer({
      minimum: 0,
      default: DEFAULTS.localCache,
      description:
        'Redis store only, and off on a Redis Cluster (its CLIENT TRACKING is per node, so every request reads Redis): sessions each instance keeps in memory, dropped as soon as Redis reports a change to them; 0 turns the copy off. The same reports close a WebSocket whose session another instance ended at once; without them it closes at its 5 s re-check.',
    }),
    storeTimeout: Duration(
      "Redis store only: budget of one command to Redis (the local session cache's invalidation connection and the questions to sentinels included), after which the request that waits on it answers 503 session_store_unavailable with Retry-After and the session stays; a connection owing a reply for twice this long is dropped and made again (a primary that hangs is left for the one Sentinel or the Cluster promotes). Raise it for a Redis that is far away or answers slowly under load (a Cluster across zones); every request may wait this long when Redis does not answer. More than 0, at most 30s.",
      DEFAULTS.storeTimeout,
    ),
    claims: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description:
          'Keep only these claims (ID token and userinfo) in the session and at /auth/user; default: all but protocol claims. _claim_sources, which may hold a token, is never kept.',
      }),
    ),
  },
  { ...strict, description: 'Server-side sessions and the sealed cookie that points at them.' },
)

export const TokensSchema = Type.Object(
  {
    refreshBefore: Duration(
      "Refresh an access token this long before it expires; a token the identity provider lets live less than twice this is refreshed halfway through its life instead (one GATEHOUSE_TOKEN_LIFETIME_SHORT warning per provider says so). A renewal the identity provider cannot serve (unavailable, or refusing the gateway's credentials) leaves the token in use until it expires, session and client-credentials tokens alike.",
      DEFAULTS.refreshBefore,
    ),
    refreshWait: Duration(
      "Longest a request waits on each refresh of another request (then 503). With routes that have tokens of their own (resource or scopes), a request may first wait through the session's refresh for another route, each wait bounded alike. At most 1d.",
      DEFAULTS.refreshWait,
    ),
    retryCooldown: Duration(
      "Per session and route, and per client-credentials token: after an upstream's 401 invalid_token has forced a refresh or a new client-credentials token (retryOnInvalidToken), the next such 401 within this time, for another token, passes to the browser instead of forcing another. Shared across instances with the Redis store. 0 turns it off.",
      DEFAULTS.retryCooldown,
    ),
    unavailableLimit: Duration(
      'How long a session may see nothing but "identity provider unavailable" or a refused DPoP proof from its refreshes (503 with Retry-After) before it ends with 401 session_expired, so the user signs in again.',
      DEFAULTS.unavailableLimit,
    ),
    maxSize: Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: SIZE_PATTERN })], {
      default: DEFAULTS.maxTokenSize,
      description:
        "Largest token Gatehouse keeps: each access, refresh and ID token of a sign-in or refresh, each exchanged or client-credentials token. An identity provider's answer with a larger one is refused as invalid, and nothing of it stored: the sign-in fails, a refresh or fetch answers 503 with Retry-After, and a GATEHOUSE_TOKEN_TOO_LARGE warning names the token's kind and size. Access tokens go to upstreams in the Authorization header, so keep it within what they accept (nginx 8 KiB per header line, Node.js 16 KiB for the whole head, Envoy 60 KiB). At least 1kb, at most 1mb.",
    }),
  },
  { ...strict, default: {}, description: 'Access-token freshness.' },
)

/** `routes[].websocket` as an object: the bounds of the route's sockets. */
export const WebSocketSchema = Type.Object(
  {
    maxMessage: Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: SIZE_PATTERN })], {
      default: DEFAULTS.websocketMaxMessage,
      description:
        'Largest message either side may send, counted after decompression, at most 100mb; a larger one closes the socket (1009) on both legs.',
    }),
    compression: Type.Boolean({
      default: false,
      description:
        'Negotiate permessage-deflate (RFC 7692) with the browser and the upstream, each without context takeover. Off: neither side may compress. On, any browser on the route can make the gateway inflate, and deflate again, up to a thousand times what it sends (docs/security.md, compression bombs).',
    }),
    pingInterval: Duration(
      'How often the gateway pings each leg, more than 0 and at most 1d; a leg that has neither sent a frame nor taken one for two intervals is dropped as dead.',
      DEFAULTS.websocketPingInterval,
    ),
  },
  strict,
)

/** RFC 8693 §3: the token type Gatehouse asks an exchange for unless the route says otherwise. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'

/** `routes[].exchange`: how a `token: exchange` route's token is obtained from the session's. */
export const ExchangeSchema = Type.Object(
  {
    subjectToken: Type.Union([Type.Literal('access_token'), Type.Literal('id_token')], {
      default: 'access_token',
      description:
        "Which of the session's tokens is exchanged: the login's access token, or its ID token. Default access_token.",
    }),
    audience: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'RFC 8693 audience: the logical name of the service the token is for, as the identity provider knows it (a client id, or a URI). grant: token-exchange only.',
      }),
    ),
    resource: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'RFC 8693 / RFC 8707 resource: the absolute URI of the service the token is for.',
      }),
    ),
    scopes: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'Scopes of the exchanged token. grant: jwt-bearer needs at least one (Entra ID: api://<app id>/.default). Each item is one scope (RFC 6749 §3.3: printable ASCII without spaces, " or \\).',
    }),
    requestedTokenType: Type.Optional(
      Type.String({
        minLength: 1,
        description: `RFC 8693 requested_token_type, a URI. Default ${ACCESS_TOKEN_TYPE}. grant: token-exchange only. An answer whose issued_token_type is another type (an access token and a JWT stand for each other), or without this setting an ID token, refresh token or SAML assertion, is refused: 502 token_exchange_wrong_token_type (RFC 8693 §2.2.1), as is a token_type N_A answer unless this asks for another type than an access token.`,
      }),
    ),
    grant: Type.Union([Type.Literal('token-exchange'), Type.Literal('jwt-bearer')], {
      default: 'token-exchange',
      description:
        'token-exchange: RFC 8693 (Keycloak, Okta, Auth0, ...). jwt-bearer: RFC 7523 with requested_token_use=on_behalf_of, the on-behalf-of flow of Microsoft Entra ID.',
    }),
  },
  {
    ...strict,
    description:
      "token: exchange routes: the session's token is exchanged at the token endpoint for one of this route's own, cached per session and route.",
  },
)

export const RouteSchema = Type.Object(
  {
    path: Type.String({
      minLength: 1,
      description:
        "Path prefix, matched on whole segments, as written: without : or *, which are no wildcards, and without % or a character a browser escapes (a space, é), as a request's path is matched decoded. A request is refused (400 invalid_path) when it is under a route with deeper routes and an upstream could read it as a deeper one's path (/api/admin%2Fx, /api//admin, /API/admin beside /api/admin), and two routes that an upstream reads as one path (/api and /API, /api;v=1 or /api.) are refused at load. Not /healthz or /readyz, which Gatehouse serves itself on every host, nor at or under the frontend's auth.basePath.",
    }),
    upstream: Type.String({
      minLength: 1,
      description:
        "http(s)://host:port of the upstream, without user:password@ (the upstream gets the route's token).",
    }),
    rewritePath: Type.Optional(
      Type.String({
        description:
          'Replaces the matched prefix when forwarding, e.g. /v1/orders. The upstream reads it as written, before the rest of the path: without ? or #, a . or .. segment (%2e included), spaces or \\, and not starting with // (another host to the upstream).',
      }),
    ),
    token: Type.Union(
      [
        Type.Literal('user'),
        Type.Literal('optional-user'),
        Type.Literal('client'),
        Type.Literal('exchange'),
        Type.Literal('none'),
      ],
      {
        default: 'user',
        description:
          "Which token to forward: the user's, the optional user's, client credentials, one exchanged from the user's (see exchange), none.",
      },
    ),
    scopes: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'Scopes of the token: the client-credentials token for token: client; for token: user and optional-user, a down-scoped token from a refresh-token grant with this scope. Refused on token: none, and on token: exchange, whose token takes exchange.scopes. Each item is one scope (RFC 6749 §3.3: printable ASCII without spaces, " or \\).',
    }),
    resource: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "RFC 8707 resource indicator (an absolute URI) of the upstream, for token: user and optional-user: the route gets a token issued for it, from the session's refresh token. A login asks its provider for the resources of every route its sessions may call (in the frontends that sign in with it, and not restricted to other providers); a session gets tokens only for those its own login asked for, so one a reload adds or changes answers 403 resource_refused to sessions signed in before, until they sign in again.",
      }),
    ),
    dpop: Type.Optional(
      Type.Boolean({
        description:
          "false sends this route's upstream a bearer token without a DPoP proof, for every session; with a resource or scopes (or token: client), the route's token is then obtained without a proof, so it is not bound. Default: a session that signed in with DPoP (its provider's dpop, whatever it says now) proves its key on the route, one that signed in without sends bearer; a token: client route's token is bound while oidc.dpop is on (with identityProviders, while the provider it comes from has dpop: the first the route lists, else the first its frontend signs in with, else the first of all). true needs oidc.dpop (with identityProviders, a provider the route serves with dpop; on a token: client route, that provider).",
      }),
    ),
    retryOnInvalidToken: Type.Boolean({
      default: true,
      description:
        'token: user, optional-user, exchange and client: when the upstream answers 401 with WWW-Authenticate: Bearer error="invalid_token", replace the token once and replay the request (bodies declared by Content-Length up to 64 KiB; larger or chunked ones get the 401). A session\'s token is refreshed; the gateway\'s client-credentials token is dropped from the cache, if the cache still holds that token, and fetched again, once for every instance. A WebSocket upgrade so refused is dialled once more with the new token.',
    }),
    methods: Type.Optional(
      Type.Array(Type.Union(HTTP_METHODS.map((m) => Type.Literal(m))), {
        minItems: 1,
        uniqueItems: true,
        description:
          'The methods this route accepts, e.g. [GET, POST]; any other gets 405 with Allow, before the session is read or a token used. HEAD comes with GET; on a websocket route the list must include GET, as the upgrade is one. Default: all of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS.',
      }),
    ),
    csrf: Type.Boolean({
      default: true,
      description:
        "Require the anti-forgery header; false for static routes, whose navigations cannot send it. Where the upstream gets a token for the session (user, optional-user, exchange, or client without anonymous), false still takes from another origin (a sibling subdomain included) only navigations with GET or HEAD: its form posts, fetches and embeds are 403 cross_site_request. A WebSocket upgrade asks for this origin's Origin instead, and false drops that too only where the upstream gets no token for the session (token: none, or client with anonymous).",
    }),
    anonymous: Type.Optional(
      Type.Boolean({
        description:
          "token: client routes only. By default a client route, like a user route, answers 401 without a signed-in session; true serves anyone, who then spends the gateway's own client credentials. Default false.",
      }),
    ),
    timeout: Duration(
      "Upstream response timeout: how long the upstream has to send its answer's head once the request is sent (then 504 upstream_timeout), and then for each pause in its body (then the answer is cut short); also its connect budget, at most 10s, and a WebSocket handshake's. Under 5s it is kept to within a few milliseconds; from 5s on, undici's coarser timers keep it, and may fire up to a second late. More than 0 (every call to an upstream has a timeout), at most 1d.",
      DEFAULTS.routeTimeout,
    ),
    bodyLimit: Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: SIZE_PATTERN })], {
      default: DEFAULTS.bodyLimit,
      description: 'Largest request body forwarded: bytes, or 512kb, 1mb.',
    }),
    websocket: Type.Union([Type.Boolean(), WebSocketSchema], {
      default: false,
      description:
        "Proxy WebSocket upgrades on this route, with the route's token and a same-origin Origin required: true, or the bounds below (true takes their defaults). The upstream's handshake comes first: it is offered the browser's subprotocols and the browser is told its choice. The socket closes (4401) when the session ends or expires. Without it an upgrade is refused (400).",
    }),
    allowClearSiteData: Type.Boolean({
      default: false,
      description: "Let the upstream's Clear-Site-Data header reach the browser; dropped otherwise.",
    }),
    allowNetworkErrorLogging: Type.Boolean({
      default: false,
      description:
        "Let the upstream's NEL and Report-To headers reach the browser: a Network Error Logging policy covers every request to the origin, every route's, and outlives the answer by its max_age; dropped otherwise.",
    }),
    allowStrictTransportSecurity: Type.Boolean({
      default: false,
      description:
        "Let the upstream's Strict-Transport-Security header reach the browser: an HSTS policy covers the whole host, every route's (and with includeSubDomains its sibling hosts), and the browser heeds the first of several, so an upstream's max-age=0 ahead of the ingress's switches HSTS off; dropped otherwise. Send HSTS from the TLS terminator in front instead (docs/security.md).",
    }),
    allowServiceWorkerScope: Type.Boolean({
      default: false,
      description:
        "Let the upstream's Service-Worker-Allowed header reach the browser: it lets a service worker this route serves control paths outside the route, up to the whole origin, every route's and /auth/*, for as long as the worker stays registered; dropped otherwise, and a worker's scope stays within its script's path.",
    }),
    allowInternalRedirect: Type.Boolean({
      default: false,
      description:
        "Let the upstream's X-Accel-Redirect, X-Sendfile and X-Lighttpd-Send-File headers reach the proxy in front, which would serve another path of the origin (another route's, with the browser's cookie) or one of its internal locations or files in the answer's place; dropped otherwise (docs/security.md).",
    }),
    passHeaders: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'Client headers to forward that Gatehouse strips by default, e.g. [x-real-ip] (see docs/security.md).',
    }),
    tls: Type.Optional(RouteTlsSchema),
    identityProviders: Type.Optional(
      Type.Array(ProviderName('The name of an entry of identityProviders.'), {
        minItems: 1,
        uniqueItems: true,
        description:
          'Serve only sessions signed in with these providers (names from identityProviders); any other session gets 403 wrong_identity_provider before a token is used. A token: client route gets its token from the first (else from the first its frontend signs in with, else the first of all). Default: every provider its frontend signs in with.',
      }),
    ),
    exchange: Type.Optional(ExchangeSchema),
  },
  { ...strict, description: 'One proxied path prefix.' },
)

/** `frontends[]`: one front door, with its own cookie, sign-in endpoints and routes. */
export const FrontendSchema = Type.Object(
  {
    name: Type.String({
      pattern: '^[a-z0-9][a-z0-9-]{0,31}$',
      description:
        'Names the frontend in logs, in the default cookie name and in the store keys of its sessions: lower-case letters, digits and -, at most 32.',
    }),
    host: Type.Optional(
      Type.String({
        pattern: FRONTEND_HOST_PATTERN,
        description:
          'Serve requests whose Host (X-Forwarded-Host with server.trustProxy) is this name, whatever the port, e.g. staff.example.com: without the port, which goes in publicUrl when it matters.',
      }),
    ),
    pathPrefix: Type.Optional(
      Type.String({
        minLength: 2,
        description:
          'Serve requests under this path prefix, matched on whole segments, e.g. /partners; its routes and auth.basePath must lie inside it. Without : or *, % or a character a browser escapes.',
      }),
    ),
    publicUrl: Type.String({
      minLength: 1,
      description:
        "Origin the browser sees for this frontend, e.g. https://staff.example.com: its redirect URI is publicUrl + auth.basePath + /callback (/callback/<name> for each of identityProviders). Its host must be the frontend's host.",
    }),
    cookieName: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_-]+$',
        description:
          "This frontend's session cookie name, unique over the frontends; default <session.cookieName>-<name>. Becomes __Host-Http-<name> when publicUrl is https; its sign-ins in progress have <that>-login.<hash>.",
      }),
    ),
    auth: Type.Object(
      {
        basePath: Type.Optional(
          Type.String({
            description:
              "Where this frontend's login endpoints live; default pathPrefix + auth.basePath. loginParams, endSession and rateLimit come from the top-level auth.",
          }),
        ),
      },
      { ...strict, default: {}, description: "This frontend's own sign-in endpoints." },
    ),
    identityProviders: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'The identity providers this frontend signs in with, by name; default: all of them.',
      }),
    ),
    routes: Type.Array(RouteSchema, { default: [], description: "This frontend's proxied routes." }),
  },
  { ...strict, description: 'One front door of the instance (docs/frontends.md).' },
)

export const ConfigSchema = Type.Object(
  {
    server: ServerSchema,
    oidc: Type.Optional(OidcSchema),
    identityProviders: Type.Optional(
      Type.Array(IdentityProviderSchema, {
        minItems: 1,
        description:
          'Several OpenID Providers, each named; instead of oidc:, which is the one-provider shorthand (named default). The first is the one /auth/login uses without ?idp=.',
      }),
    ),
    session: SessionSchema,
    tokens: TokensSchema,
    auth: Type.Object(
      {
        basePath: Type.String({
          default: '/auth',
          description: 'Where the login endpoints live: a path such as /auth, not / itself.',
        }),
        loginParams: Type.Array(Type.String({ minLength: 1 }), {
          default: [...DEFAULTS.loginParams],
          description:
            'Query parameters of /auth/login passed through to the IdP; prompt is checked against prompt_values_supported. Protocol parameters Gatehouse sets itself, and resource, are refused.',
        }),
        endSession: Type.Union([Type.Literal('post'), Type.Literal('client-id'), Type.Literal('get')], {
          default: 'post',
          description:
            "How /auth/logout sends the browser to the IdP's end_session_endpoint (RP-Initiated Logout 1.0). post: a self-submitting form carries id_token_hint in a POST body, never in a URL. client-id: a redirect with client_id (and logout_hint from the login_hint claim, when the session has one) instead of the ID token. get: a redirect with id_token_hint in the URL, for OPs that take neither.",
        }),
        rateLimit: Type.Object(
          {
            max: Type.Integer({
              minimum: 1,
              default: 30,
              description: 'Requests per client IP (an IPv6 client per /64) and window.',
            }),
            window: Duration('The rate-limit window.', '1m'),
          },
          {
            ...strict,
            default: {},
            description:
              'Rate limit on login and callback, per client IP (an IPv6 client per /64); with frontends, each frontend has its own.',
          },
        ),
      },
      {
        ...strict,
        default: {},
        description: 'The login, callback, user and logout endpoints Gatehouse serves itself.',
      },
    ),
    csrf: Type.Object(
      {
        header: Type.String({
          pattern: '^[A-Za-z0-9-]+$',
          default: 'x-csrf',
          description: 'API routes require this header with the value 1.',
        }),
      },
      {
        ...strict,
        default: {},
        description:
          'Anti-forgery: the header a same-origin SPA sends on API calls and a cross-site form cannot.',
      },
    ),
    logging: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          {
            default: 'info',
            description:
              'Least severe level logged (JSON lines on stdout); tokens, codes, cookies and secrets are redacted at every level.',
          },
        ),
        accessLog: Type.Boolean({
          default: false,
          description:
            "One info line per request (method, route, status, ms, and `code`, the [catalogue](errors.md) code, when the answer is one of the gateway's own errors: a `400` says whether a second `Host` or a target that is no path refused it). A request whose connection closed before its answer was complete (the browser left) gets one too, marked `abandoned: true`, with `status` only when the answer's head had been sent; it is counted in `gatehouse_http_requests_abandoned_total`, not `gatehouse_http_requests_total`. Off by default: the ingress in front usually logs requests, and the line costs about 13 % of throughput (docs/performance.md).",
        }),
      },
      { ...strict, default: {}, description: 'What Gatehouse logs, and how much.' },
    ),
    metrics: Type.Object(
      {
        enabled: Type.Boolean({
          default: true,
          description: 'Serve Prometheus metrics at /metrics, on a listener of their own.',
        }),
        host: Type.String({
          default: DEFAULTS.metricsHost,
          description:
            'Interface of the metrics listener, an IP address or a host name, without brackets or a port. Loopback by default, so metrics are never exposed by accident; 0.0.0.0 for a scraper on another host (Kubernetes scrapes the pod IP).',
        }),
        port: Type.Integer({
          minimum: 0,
          maximum: 65535,
          default: DEFAULTS.metricsPort,
          description: 'Port of the metrics listener; never the public one. 0 picks a free port (tests).',
        }),
      },
      { ...strict, default: {}, description: 'Prometheus metrics, off the public listener.' },
    ),
    tracing: Type.Object(
      {
        enabled: Type.Boolean({
          default: false,
          description:
            'Export OpenTelemetry traces over OTLP. Where to, how and how many are the standard OTEL_* environment variables (docs/observability.md). Off, the SDK is never loaded.',
        }),
        trustIncoming: Type.Boolean({
          default: false,
          description:
            "Continue a trace from the request's traceparent and tracestate. Off by default: any browser can send them, and would choose the trace id and whether the request is sampled. On only when every request comes through a proxy that sets or strips them: a continued trace carries its tracestate on to upstreams (W3C Trace Context §3.3).",
        }),
      },
      { ...strict, default: {}, description: 'OpenTelemetry tracing; off by default.' },
    ),
    routes: Type.Array(RouteSchema, {
      default: [],
      description: 'Proxied routes; with frontends, each frontend lists its own instead.',
    }),
    frontends: Type.Optional(
      Type.Array(FrontendSchema, {
        minItems: 1,
        description:
          'Several front doors in one instance, each matched by host and/or pathPrefix, with its own publicUrl, session cookie, sign-in endpoints and routes. Without it the instance is one frontend: server.publicUrl, session.cookieName, auth.basePath and routes.',
      }),
    ),
  },
  {
    ...strict,
    $id: 'https://gatehouse.dev/schema/routes.schema.json',
    title: 'Gatehouse configuration (routes.yaml)',
  },
)

export type RawConfig = Static<typeof ConfigSchema>
