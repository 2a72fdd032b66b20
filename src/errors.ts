import type { IncomingMessage } from 'node:http'
import createError, { type FastifyErrorConstructor } from '@fastify/error'

/**
 * The one catalogue of errors Gatehouse answers with. Each code maps to a
 * status, a stable machine-readable `error` string for SPAs, and a message
 * written for the person reading it. `docs/errors.md` documents each code;
 * a test keeps the two in step.
 */
export interface ErrorSpec {
  readonly status: number
  /** The `error` field of the JSON body. Stable: SPAs switch on it. */
  readonly error: string
  readonly message: string
  /** Seconds; set on 503s so clients and load balancers back off. */
  readonly retryAfter?: number
}

export const errorCatalogue = {
  GATEHOUSE_ERR_UNAUTHENTICATED: {
    status: 401,
    error: 'unauthenticated',
    message: 'No session. Send the user to the login endpoint.',
  },
  GATEHOUSE_ERR_SESSION_EXPIRED: {
    status: 401,
    error: 'session_expired',
    message: 'The session has ended at the identity provider. Send the user to the login endpoint.',
  },
  GATEHOUSE_ERR_SESSION_UNREADABLE: {
    status: 401,
    error: 'unauthenticated',
    message: 'The session cookie does not open its session. Send the user to the login endpoint.',
  },
  GATEHOUSE_ERR_CSRF: {
    status: 403,
    error: 'csrf_header_missing',
    message: 'API calls must carry the anti-forgery header with the value "1".',
  },
  GATEHOUSE_ERR_CROSS_SITE: {
    status: 403,
    error: 'cross_site_request',
    message: 'Cross-site requests to API routes are refused.',
  },
  GATEHOUSE_ERR_NOT_A_NAVIGATION: {
    status: 403,
    error: 'navigation_required',
    message:
      'Sign-in starts from a link the browser follows, not from an image, a script call or a frame of another site.',
  },
  GATEHOUSE_ERR_RESOURCE_REFUSED: {
    status: 403,
    error: 'resource_refused',
    message:
      "The identity provider refused to issue a token for this route's resource (invalid_target). The session stays; other routes still work.",
  },
  GATEHOUSE_ERR_WRONG_IDENTITY_PROVIDER: {
    status: 403,
    error: 'wrong_identity_provider',
    message:
      'This route serves sessions of other identity providers than the one this session signed in with. Sign in with one of those to use it.',
  },
  GATEHOUSE_ERR_CLIENT_TOKEN_REFUSED: {
    status: 403,
    error: 'client_token_refused',
    message:
      "The identity provider refused the client-credentials token for this route's scopes. Other routes still work.",
  },
  GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED: {
    status: 403,
    error: 'token_exchange_refused',
    message:
      "The identity provider refused to exchange the session's token for this route's. The session stays; other routes still work.",
  },
  GATEHOUSE_ERR_IDP_CLIENT_REFUSED: {
    status: 500,
    error: 'idp_client_refused',
    message:
      "Sign-in is misconfigured: the identity provider refused this gateway's own client credentials. Retrying will not help; an operator must fix the configuration.",
  },
  GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE: {
    status: 503,
    error: 'token_refresh_unavailable',
    message:
      'The access token could not be refreshed because the identity provider is unavailable. Retry later.',
    retryAfter: 5,
  },
  GATEHOUSE_ERR_DPOP_PROOF_REFUSED: {
    status: 503,
    error: 'dpop_proof_refused',
    message:
      "The identity provider refused the gateway's DPoP proof, not the session's grant. The session stays. Retry later.",
    retryAfter: 5,
  },
  GATEHOUSE_ERR_TOKEN_EXCHANGE_UNAVAILABLE: {
    status: 503,
    error: 'token_exchange_unavailable',
    message:
      "This route's token could not be obtained by token exchange because the identity provider is unavailable. Retry later.",
    retryAfter: 5,
  },
  GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT: {
    status: 503,
    error: 'token_refresh_unavailable',
    message: 'Another request is still refreshing the access token. Retry shortly.',
    retryAfter: 1,
  },
  GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE: {
    status: 503,
    error: 'client_token_unavailable',
    message: 'A client-credentials token could not be obtained from the identity provider. Retry later.',
    retryAfter: 5,
  },
  GATEHOUSE_ERR_IDP_UNAVAILABLE: {
    status: 503,
    error: 'idp_unavailable',
    message: 'The identity provider is unavailable. Retry later.',
    retryAfter: 5,
  },
  GATEHOUSE_ERR_DPOP_KEYS_BUSY: {
    status: 503,
    error: 'dpop_keys_busy',
    message:
      'This gateway instance is making as many DPoP keys for sign-ins as it may at once. Retry shortly.',
    // About what a full queue of RSA pairs takes to be made (src/dpop/keys.ts).
    retryAfter: 3,
  },
  GATEHOUSE_ERR_IDP_INCOMPATIBLE: {
    status: 503,
    error: 'idp_incompatible',
    message: 'The identity provider does not support what this gateway is configured to require.',
    retryAfter: 30,
  },
  GATEHOUSE_ERR_INVALID_LOGIN_PARAM: {
    status: 400,
    error: 'invalid_login_param',
    message: 'A sign-in parameter is not accepted.',
  },
  GATEHOUSE_ERR_UNKNOWN_IDENTITY_PROVIDER: {
    status: 400,
    error: 'unknown_identity_provider',
    message: 'The sign-in link names an identity provider this gateway does not have.',
  },
  GATEHOUSE_ERR_STORE_UNAVAILABLE: {
    status: 503,
    error: 'session_store_unavailable',
    message: 'The session store is unavailable. Retry later.',
    retryAfter: 2,
  },
  GATEHOUSE_ERR_LOGOUT_IN_PROGRESS: {
    status: 503,
    error: 'logout_in_progress',
    message: 'An earlier delivery of this logout token is still being carried out. Send it again later.',
    retryAfter: 2,
  },
  GATEHOUSE_ERR_TOKEN_EXCHANGE_WRONG_TOKEN_TYPE: {
    status: 502,
    error: 'token_exchange_wrong_token_type',
    message:
      "The identity provider's token exchange answer issued a token this route cannot forward (not an access token of the type and binding asked for), so none was sent. The session stays; other routes still work. An operator must fix the exchange at the identity provider or in routes[].exchange.",
  },
  GATEHOUSE_ERR_UPSTREAM_UNREACHABLE: {
    status: 502,
    error: 'upstream_unreachable',
    message: 'The upstream service could not be reached.',
  },
  GATEHOUSE_ERR_UPSTREAM_INVALID_RESPONSE: {
    status: 502,
    error: 'upstream_invalid_response',
    message: "The upstream service's answer was not valid HTTP, so none of it was passed on.",
  },
  GATEHOUSE_ERR_UPSTREAM_HEADERS_TOO_LARGE: {
    status: 502,
    error: 'upstream_headers_too_large',
    message:
      "The upstream service refused the request's headers as too large (431). They carry the access token the gateway adds, so this is for an operator to fix, not the browser; the gateway's log says how large it was.",
  },
  GATEHOUSE_ERR_UPSTREAM_TLS: {
    status: 502,
    error: 'upstream_tls_failed',
    message: 'The TLS handshake with the upstream service failed.',
  },
  GATEHOUSE_ERR_UPSTREAM_TIMEOUT: {
    status: 504,
    error: 'upstream_timeout',
    message: 'The upstream service did not answer in time.',
  },
  GATEHOUSE_ERR_UPSTREAM_DPOP_NONCE: {
    status: 503,
    error: 'upstream_dpop_nonce',
    message:
      "The upstream service asked for a DPoP nonce in the gateway's proof, and the request could not be sent again with it. The session stays. Send the request again.",
    retryAfter: 1,
  },
  GATEHOUSE_ERR_UPSTREAM_DPOP_PROOF_REFUSED: {
    status: 502,
    error: 'upstream_dpop_proof_refused',
    message:
      "The upstream service refused the gateway's DPoP proof (invalid_dpop_proof). This is for an operator to fix, not the browser; the gateway's log names the route and what the proof named.",
  },
  GATEHOUSE_ERR_UPSTREAM_UPGRADE_REFUSED: {
    status: 502,
    error: 'upstream_upgrade_refused',
    message: 'The upstream service did not accept the WebSocket upgrade.',
  },
  GATEHOUSE_ERR_INVALID_RETURN_TO: {
    status: 400,
    error: 'invalid_return_to',
    message: 'returnTo must be a relative path on this origin, such as /orders.',
  },
  GATEHOUSE_ERR_LOGIN_FAILED: {
    status: 400,
    error: 'login_failed',
    message: 'The login could not be completed.',
  },
  GATEHOUSE_ERR_INVALID_LOGOUT: {
    status: 400,
    error: 'invalid_logout_request',
    message: 'This logout link is not valid for the current session.',
  },
  GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN: {
    status: 400,
    error: 'invalid_request',
    message: 'The logout token is not valid.',
  },
  GATEHOUSE_ERR_INVALID_PATH: {
    status: 400,
    error: 'invalid_path',
    message:
      'The path has a dot-segment (in any encoding or with ;parameters) or characters an upstream could read differently.',
  },
  GATEHOUSE_ERR_DUPLICATE_HOST: {
    status: 400,
    error: 'duplicate_host',
    message: 'The request has more than one Host header.',
  },
  GATEHOUSE_ERR_INVALID_FRAMING: {
    status: 400,
    error: 'invalid_framing',
    message:
      'An HTTP/1.0 request must not carry Transfer-Encoding (RFC 9112 §6.1). The connection is closed.',
  },
  GATEHOUSE_ERR_TRANSFER_CODING_UNSUPPORTED: {
    status: 501,
    error: 'transfer_coding_unsupported',
    message:
      'The request body has a transfer coding other than chunked, which the gateway does not decode (RFC 9112 §6.1).',
  },
  GATEHOUSE_ERR_MALFORMED_REQUEST: {
    status: 400,
    error: 'malformed_request',
    message: 'The request is not valid HTTP/1.1. The connection is closed.',
  },
  GATEHOUSE_ERR_REQUEST_TIMEOUT: {
    status: 408,
    error: 'request_timeout',
    message: 'The request did not arrive whole within the time allowed. The connection is closed.',
  },
  GATEHOUSE_ERR_HEADERS_TOO_LARGE: {
    status: 431,
    error: 'headers_too_large',
    message: 'The request headers are larger than the gateway accepts. The connection is closed.',
  },
  GATEHOUSE_ERR_WEBSOCKET_NOT_ENABLED: {
    status: 400,
    error: 'websocket_not_enabled',
    message: 'This route does not proxy WebSocket upgrades.',
  },
  GATEHOUSE_ERR_INVALID_UPGRADE: {
    status: 400,
    error: 'invalid_upgrade',
    message: 'The WebSocket upgrade request is malformed.',
  },
  GATEHOUSE_ERR_TOO_MANY_WEBSOCKETS: {
    status: 429,
    error: 'too_many_websockets',
    message: 'This session already holds as many WebSockets as it may. Close one before opening another.',
  },
  GATEHOUSE_ERR_WEBSOCKET_CAPACITY: {
    status: 503,
    error: 'websocket_capacity',
    message: 'This gateway instance holds as many WebSockets as it may. Retry later.',
    retryAfter: 5,
  },
  GATEHOUSE_ERR_SHUTTING_DOWN: {
    status: 503,
    error: 'shutting_down',
    message: 'This gateway instance is shutting down. Retry; another instance will answer.',
    retryAfter: 1,
  },
  GATEHOUSE_ERR_METHOD_NOT_ALLOWED: {
    status: 405,
    error: 'method_not_allowed',
    message: 'This route does not accept this method; the Allow header lists those it does.',
  },
  GATEHOUSE_ERR_PAYLOAD_TOO_LARGE: {
    status: 413,
    error: 'payload_too_large',
    message: "The request body is larger than this route's bodyLimit.",
  },
  GATEHOUSE_ERR_RATE_LIMITED: {
    status: 429,
    error: 'too_many_requests',
    message: 'Too many sign-in attempts from this address. Retry later.',
  },
  GATEHOUSE_ERR_NOT_FOUND: {
    status: 404,
    error: 'not_found',
    message: 'No route matches this path.',
  },
  GATEHOUSE_ERR_INTERNAL: {
    status: 500,
    error: 'internal_error',
    message: 'Gatehouse hit an unexpected error. It has been logged.',
  },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof errorCatalogue

/**
 * Codes that never reach a client: conditions an operator should find in
 * the log, on the `code` field of the line. Stable like the HTTP codes, and
 * documented in `docs/errors.md` beside them.
 */
export const logCatalogue = {
  GATEHOUSE_SESSION_CACHE_OFF: {
    level: 'warn',
    message: 'The local session cache is off, so every request reads Redis.',
  },
  GATEHOUSE_STORE_DOWN: {
    level: 'warn',
    message: 'The session store became unreachable.',
  },
  GATEHOUSE_STORE_RECOVERED: {
    level: 'info',
    message: 'The session store is reachable again, after an outage of the given duration.',
  },
  GATEHOUSE_STORE_EVICTION: {
    level: 'warn',
    message:
      'Redis may evict keys under memory pressure (a maxmemory and a maxmemory-policy other than noeviction): a refresh lock, session or rotated refresh token it evicts can replay a refresh token or sign a user out.',
  },
  GATEHOUSE_STORE_EVICTION_UNCHECKED: {
    level: 'info',
    message:
      "Redis's maxmemory-policy could not be read with INFO memory, so whether it may evict keys is unknown.",
  },
  GATEHOUSE_STORE_SCRIPTING_REFUSED: {
    level: 'error',
    message:
      "Redis's ACL refuses the gateway's user EVAL or EVALSHA (NOPERM): sessions, refresh locks and token writes are Lua scripts, so sign-ins, refreshes and sign-outs answer 503, no refresh token is redeemed, and /readyz answers 503.",
  },
  GATEHOUSE_STORE_FULL: {
    level: 'warn',
    message:
      'Redis refuses writes (OOM): its used memory is over maxmemory under maxmemory-policy noeviction. Sign-ins and refreshes answer 503 while sessions with fresh tokens are served and sign-outs work (DEL frees memory); /readyz says degraded (200).',
  },
  GATEHOUSE_STORE_SHORT_OF_REPLICAS: {
    level: 'warn',
    message:
      'Redis refuses writes (NOREPLICAS): fewer good replicas are connected than its min-replicas-to-write asks for. Sign-ins, refreshes and sign-outs answer 503 while sessions with fresh tokens are served; /readyz says degraded (200).',
  },
  GATEHOUSE_STORE_KEYS_REFUSED: {
    level: 'error',
    message:
      "Redis's ACL refuses the gateway's user writes to its keys (NOPERM on a key under session.keyPrefix): every session, refresh lock and token write is refused, so sign-ins, refreshes and sign-outs answer 503, no refresh token is redeemed, and /readyz answers 503.",
  },
  GATEHOUSE_STORE_SLOTS_UNSERVED: {
    level: 'warn',
    message:
      "A Redis Cluster does not serve every slot: a master the slot map names does not answer, a node says cluster_state:fail, or slots are held by no master. Requests whose keys hash to those slots answer 503 (under cluster-require-full-coverage yes, Redis's default, every request that needs Redis does once the cluster marks the master failed), and /readyz answers 503.",
  },
  GATEHOUSE_STORE_REFUSAL_OVER: {
    level: 'info',
    message:
      'Redis runs the gateway’s scripts, lets it write its keys, or takes its writes, again; or a Redis Cluster serves every slot again.',
  },
  GATEHOUSE_TOKEN_LIFETIME_ASSUMED: {
    level: 'warn',
    message: 'A token response had no usable expires_in, so the token lifetime was assumed.',
  },
  GATEHOUSE_TOKEN_TOO_LARGE: {
    level: 'warn',
    message:
      'The identity provider issued a token over tokens.maxSize; its answer was refused and nothing of it kept. The line names the token and its size, once a minute per kind of call and token.',
  },
  GATEHOUSE_ID_TOKEN_ISSUED_AHEAD: {
    level: 'warn',
    message:
      "The identity provider issued an ID token dated (iat) ahead of this host's clock by more than five minutes (a clock set wrong, not skew); its answer was refused and nothing of it kept. Once a minute per kind of call.",
  },
  GATEHOUSE_TOKEN_LIFETIME_SHORT: {
    level: 'warn',
    message:
      "The identity provider's access tokens live less than twice tokens.refreshBefore, so each is renewed halfway through its life.",
  },
  GATEHOUSE_CLIENT_AUTH_NOT_ADVERTISED: {
    level: 'warn',
    message:
      "The identity provider's discovery document does not advertise the configured client authentication method; token requests use it all the same.",
  },
  GATEHOUSE_IDP_REDISCOVERY_FAILED: {
    level: 'warn',
    message:
      'A config reload could not discover an identity provider it keeps again; the metadata discovered before stays in use, and the reload applies.',
  },
  GATEHOUSE_SESSION_UNREADABLE: {
    level: 'warn',
    message:
      "A session record did not open with the key the request's cookie carries; the request was answered 401.",
  },
  GATEHOUSE_SESSION_PREVIOUS_FORMAT: {
    level: 'info',
    message:
      'A session of the previous version, whose tokens were not sealed, was ended and its refresh token revoked.',
  },
  GATEHOUSE_SESSION_OVER_BOUND: {
    level: 'info',
    message:
      "A sign-in took its user past session.maxPerUser at its frontend, so the user's oldest session there was ended, as a logout would end it.",
  },
  GATEHOUSE_SESSION_EVICTED: {
    level: 'warn',
    message:
      'The memory session store held session.maxSessions sessions, so a new one evicted the least recently used live session, signing its user out.',
  },
  GATEHOUSE_SESSION_BOUND_UNCHECKED: {
    level: 'warn',
    message:
      "A sign-in could not check session.maxPerUser: the session store did not answer. The sign-in went on; the user's next sign-in ends what is over the bound.",
  },
  GATEHOUSE_BACKCHANNEL_LOGOUT_OWED: {
    level: 'warn',
    message:
      'A verified back-channel logout token could not be carried out: the session store did not answer. The IdP was answered 503; the gateway ends the sessions itself once the store answers.',
  },
  GATEHOUSE_BACKCHANNEL_LOGOUT_UNVERIFIED: {
    level: 'warn',
    message:
      "A back-channel logout token came while the identity provider's keys could not be fetched, or signed with a key missing from a JWKS fetched too recently to fetch again. The IdP was answered 503; the gateway holds the token, unverified and bounded, and verifies and carries it out once the keys can be read.",
  },
  GATEHOUSE_BACKCHANNEL_LOGOUT_LOST: {
    level: 'error',
    message:
      "A back-channel logout the gateway held to carry out later (owed since a store outage, or unverified while the identity provider's keys could not be fetched) was given up: the sessions it names may still run.",
  },
  GATEHOUSE_REVOCATION_OWED: {
    level: 'warn',
    message:
      'The refresh token of an ended session (a logout, a sign-in over it) could not be revoked: the identity provider did not answer. The session has ended; the gateway revokes the token once the identity provider answers.',
  },
  GATEHOUSE_REVOCATION_LOST: {
    level: 'error',
    message:
      'The revocation of the refresh token of an ended session, owed since the identity provider did not answer, was given up: its grant lives on at the identity provider until the token expires.',
  },
  GATEHOUSE_CLIENT_TOKEN_UNREADABLE: {
    level: 'warn',
    message: 'A cached client-credentials token did not open; a new one is fetched.',
  },
  GATEHOUSE_UPGRADE_NOT_SERVED: {
    level: 'info',
    message:
      'A WebSocket upgrade pipelined behind a request still being answered was not served: the connection closed once the answers ahead of it were written.',
  },
  GATEHOUSE_CONFIG_RELOADED: {
    level: 'info',
    message:
      'The config file was reloaded: new requests run on it, requests in flight finish on the previous one.',
  },
  GATEHOUSE_CONFIG_RELOAD_REJECTED: {
    level: 'error',
    message: 'A config reload was refused and the running config kept; one line per problem, then a summary.',
  },
  GATEHOUSE_CONFIG_WATCH_STALLED: {
    level: 'warn',
    message:
      "The config watch's first read of the file has not returned: the gateway serves the config it loaded at start, and changes to the file are not seen until the read returns.",
  },
  GATEHOUSE_CONFIG_RELOAD_DEFERRED: {
    level: 'warn',
    message:
      'A config reload was not checked: the thread that checked the file for an earlier reload is stuck and has not exited. The file is read again once it has.',
  },
  GATEHOUSE_CONFIG_RELOAD_RETRY: {
    level: 'warn',
    message:
      'A config reload was refused for a reason not in the file; the file is read again later, a bounded number of times.',
  },
} as const satisfies Record<string, { readonly level: 'info' | 'warn' | 'error'; readonly message: string }>

export type LogCode = keyof typeof logCatalogue

export interface GatehouseError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  /**
   * Why, in words, for logs only: `ECONNREFUSED 127.0.0.1:4000`,
   * `HTTP 400 invalid_request`. Never a token, code or secret.
   */
  readonly reason?: string
  /**
   * The log id (`sessionLogId`) of a session this error ends for the
   * gateway's own reasons, for the one line that says so.
   */
  readonly session?: string
  /**
   * The session this `GATEHOUSE_ERR_SESSION_EXPIRED` names was ended by
   * something else while the request used it: its answer does not clear
   * the session cookie, which may by then be a new session's.
   */
  readonly endedElsewhere?: boolean
  /**
   * Seconds the client is told to wait (`Retry-After`) when this answer's
   * wait is not the catalogue's: what the IdP asked for, bounded, or what
   * is left of the wait the gateway keeps. Only on codes with a catalogue value.
   */
  readonly retryAfter?: number
}

const constructors = new Map<ErrorCode, FastifyErrorConstructor>()
for (const [code, spec] of Object.entries(errorCatalogue) as [ErrorCode, ErrorSpec][]) {
  constructors.set(code, createError(code, '%s', spec.status))
}

/**
 * Builds a catalogue error. `detail` replaces the catalogue message; it is
 * shown to the user, so it must never carry a token, code or secret.
 */
export function gatehouseError(code: ErrorCode, detail?: string, cause?: unknown): GatehouseError {
  const Ctor = constructors.get(code)!
  const err = new Ctor(detail ?? errorCatalogue[code].message) as unknown as GatehouseError
  if (cause !== undefined) (err as Error).cause = cause
  return err
}

/** Errors already logged where they happened, with what only that place knew. */
const logged = new WeakSet<Error>()

/**
 * Marks `err` as logged where it happened (the upstream failure's line
 * names its route and cause): the error handler writes no second line
 * for it, so one failed call is one line, not two.
 */
export function loggedAlready<E extends Error>(err: E): E {
  logged.add(err)
  return err
}

/** Whether `loggedAlready` marked `err`. */
export function wasLogged(err: Error): boolean {
  return logged.has(err)
}

/**
 * The catalogue code each request was answered with, while it is answered:
 * its access line and its server span name it. Kept by the request rather
 * than set on it: a property only error answers carried would give Node's
 * and Fastify's code two shapes of request, and a map filled only on error
 * answers costs the others nothing.
 */
const answers = new WeakMap<IncomingMessage, ErrorCode>()

/** Notes that `request` is answered with the catalogue error `code`. */
export function noteAnswer(request: IncomingMessage, code: ErrorCode): void {
  answers.set(request, code)
}

/** The code `noteAnswer` noted for `request`, if its answer is one of the catalogue's. */
export function answerCodeOf(request: IncomingMessage): ErrorCode | undefined {
  return answers.get(request)
}

export function isGatehouseError(err: unknown): err is GatehouseError {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { code?: unknown }).code === 'string' &&
    Object.hasOwn(errorCatalogue, (err as { code: string }).code)
  )
}

/** Names an error's underlying failure for logs, without dumping its payload. */
export function causeName(err: Error): string | undefined {
  const { reason } = err as { reason?: unknown }
  if (typeof reason === 'string') return reason
  const cause = err.cause as { code?: unknown; name?: unknown } | undefined
  if (!cause) return undefined
  return String(cause.code ?? cause.name ?? 'unknown')
}

/** Seconds a client should wait before retrying, for the codes that say so. */
export function retryAfterOf(code: ErrorCode): number | undefined {
  const spec: ErrorSpec = errorCatalogue[code]
  return spec.retryAfter
}

/**
 * Seconds a client should wait before retrying after `err`: its own wait
 * (`withRetryAfter`), else its code's. Always a whole number of at least 1
 * when set, so a `Retry-After` header is never 0, negative or `NaN`.
 */
export function retryAfterFor(err: GatehouseError): number | undefined {
  const own = err.retryAfter
  return own !== undefined && Number.isSafeInteger(own) && own >= 1 ? own : retryAfterOf(err.code)
}

/**
 * `err`, told to have the client wait `seconds` (rounded up) rather than
 * its catalogue value. A code without a catalogue value asks for no wait
 * and is left as it is, as is a wait that is not a positive number.
 */
export function withRetryAfter<E extends GatehouseError>(err: E, seconds: number): E {
  if (retryAfterOf(err.code) === undefined || !(seconds > 0) || !Number.isFinite(seconds)) return err
  return Object.assign(err, { retryAfter: Math.ceil(seconds) })
}

/**
 * The session store (Redis) could not serve a request: down, unreachable or
 * too slow. Answered as 503 with `Retry-After`; the session itself is kept,
 * so the user can carry on once the store is back. `cause` holds the
 * driver's error, for logs only. Like every catalogue constructor, it
 * matches `instanceof` for any error with its code.
 */
export class StoreUnavailableError extends (constructors.get('GATEHOUSE_ERR_STORE_UNAVAILABLE')!) {
  declare readonly code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE'
  declare readonly statusCode: 503

  constructor(cause?: unknown) {
    super(errorCatalogue.GATEHOUSE_ERR_STORE_UNAVAILABLE.message, ...(cause === undefined ? [] : [{ cause }]))
    this.name = 'StoreUnavailableError'
  }
}

/**
 * Another request (on this or another instance) held a refresh lock for
 * longer than we were willing to wait. Answered as 503 with `Retry-After`;
 * the waiter never redeems the refresh token itself, since a rotated refresh
 * token is single-use (RFC 9700 §4.14.2).
 */
export class RefreshWaitTimeoutError extends (constructors.get('GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT')!) {
  declare readonly code: 'GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT'
  declare readonly statusCode: 503
  /** The lock that was waited on, for logs. */
  readonly lock: string
  readonly waitedMs: number

  constructor(lock: string, waitedMs: number) {
    super(errorCatalogue.GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT.message)
    this.name = 'RefreshWaitTimeoutError'
    this.lock = lock
    this.waitedMs = waitedMs
  }
}
