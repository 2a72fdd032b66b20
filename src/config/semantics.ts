import { foldUnderscores, isSpoofable, NEVER_PASSED, TRACE_CONTEXT } from '../header-rules.js'
import { upstreamReading } from '../path-reading.js'
import { parseDuration, parseSize } from './duration.js'
import { checkExchange } from './exchange.js'
import { checkFapi2 } from './fapi2.js'
import { checkFrontends, formatAt, type RouteList, routeLists, unusedProviders } from './frontend-rules.js'
import { listenHostProblem } from './listen-host.js'
import { LOOPBACK_HOST as LOOPBACK } from './loopback.js'
import { HEALTH_PATHS, ROUTER_SYNTAX, ROUTER_SYNTAX_PROBLEM } from './own-paths.js'
import { clientTokenProvider, optionName, type RawProvider, rawProviders } from './providers.js'
import { escapedPathProblem, rewritePathProblem } from './route-paths.js'
import type { RawConfig } from './schema.js'
import { checkScopes } from './scope-token.js'
import {
  clientIdProblem,
  clientSecretProblem,
  clientSecretWarning,
  sessionSecretWarning,
} from './secret-text.js'
import { parseStore } from './store-url.js'

interface Finding {
  readonly path: (string | number)[]
  readonly message: string
}

/** RFC 9110 §5.1: a field name is a token. */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
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
 * `resource` (RFC 8707 §2) may be configured, as ADFS needs, but Gatehouse
 * sets it from `routes[].resource`: a browser choosing it would choose which
 * resource servers the session's refresh token is good for.
 */
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

const BROWSER_MUST_NOT_CHOOSE: ReadonlyMap<string, string> = new Map([
  ['resource', ' (from routes[].resource); a browser must not choose it'],
])

/** `routes[].websocket.pingInterval` at most: 1 d, well inside Node's 2^31 - 1 ms timers. */
const MAX_PING_INTERVAL = 86_400_000
/** `routes[].websocket.maxMessage` at most: 100 MiB, `ws`'s own default. */
const MAX_MESSAGE = 100 * 1024 * 1024
/**
 * `tokens.maxSize` at most: 1 MiB, the most of an IdP answer that is read
 * at all (oidc/idp-http.ts), so a larger bound would bound nothing.
 */
const MAX_TOKEN_SIZE = 1024 * 1024

const OWN_PATHS: readonly string[] = Object.values(HEALTH_PATHS)

/** The parse, or NaN (which no comparison holds for) when the text does not parse. */
function orNaN(parse: () => number): number {
  try {
    return parse()
  } catch {
    return Number.NaN
  }
}
/**
 * A duration the gateway keeps with a timer at most: a day. Node fires a
 * timer of more than 2^31 - 1 ms (about 24.8 days) at once, and some run a
 * sum or a multiple of one (a late answer's budget, a lock's safety release).
 */
const MAX_TIMED = 86_400_000

/** The longest `session.storeTimeout`. */
const MAX_STORE_TIMEOUT = 30_000

/**
 * A duration kept by a timer: at most `MAX_TIMED`, and, where it times a
 * call to `peer`, more than 0, which undici and AbortSignal read as no
 * timeout, or as one that has passed already.
 */
function checkTimed(value: number | string, path: (string | number)[], add: Add, peer?: string): void {
  // A malformed one the schema has reported already.
  const ms = orNaN(() => parseDuration(value))
  if (peer !== undefined && ms === 0) add(path, `must be more than 0: every call to ${peer} has a timeout`)
  else if (ms > MAX_TIMED)
    add(
      path,
      'must be at most 1d: the gateway keeps it with a timer (Node fires one of more than 24.8 days at once)',
    )
}

/** `<your-org>`, `{tenantid}`: what documentation examples leave for the reader to fill in. */
const PLACEHOLDER = /<[^<>]*>|\{[^{}]*\}/

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value)
  } catch {
    return undefined
  }
}

/** The options of one provider (`oidc:` or an entry of `identityProviders:`). */
function checkProvider(provider: RawProvider, add: (path: (string | number)[], message: string) => void) {
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

/**
 * What WHATWG URL parsing drops (tabs and line breaks anywhere, C0 controls
 * and spaces at either end) from a text the config keeps as written: a
 * trailing line break from `$(cat file)` parsed, and was then sent and
 * compared with the line break in it.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const DROPPED_BY_URL_PARSING = /[\u0000-\u0020\u007f]/

const DROPPED_IN_URL =
  'holds a space, tab or line break (from a file or a variable?), which a URL parser drops and Gatehouse would keep: remove it'

/** A URL's user-info: Gatehouse sends it nowhere, and would log it with the URL. */
function carriesCredentials(url: URL): boolean {
  return url.username !== '' || url.password !== ''
}

const CREDENTIALS_IN_URL =
  'must not carry credentials (user:password@): Gatehouse never sends them, and the URL is logged'

/** An origin the browser sees: http(s), nothing after the origin, https unless loopback. */
export function checkPublicUrl(value: string, at: (string | number)[], add: Add): void {
  const publicUrl = parseUrl(value)
  if (!publicUrl || !['http:', 'https:'].includes(publicUrl.protocol)) {
    add(at, 'must be an http(s) URL such as https://app.example.com')
  } else if (publicUrl.pathname !== '/' || publicUrl.search || publicUrl.hash) {
    add(at, 'must be an origin only, without a path, query or fragment')
  } else if (carriesCredentials(publicUrl)) {
    add(at, CREDENTIALS_IN_URL)
  } else if (publicUrl.protocol === 'http:' && !LOOPBACK.test(publicUrl.hostname)) {
    // RFC 10017 §6.1.3.2: the BFF MUST set Secure, which a browser
    // honours only over https.
    add(
      at,
      'must use https, so cookies are Secure; plain http is allowed only for loopback hosts (localhost, 127.0.0.0/8, [::1])',
    )
  }
}

/** A sign-in base path: `/auth`, `/partners/auth`. */
export function checkBasePath(basePath: string, at: (string | number)[], add: Add): void {
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(basePath) || basePath.includes('//') || basePath === '/') {
    add(at, 'must be a path such as /auth')
  }
}

type Add = (path: (string | number)[], message: string) => void

/**
 * What the schema cannot say: cross-field rules and the shape of URLs and
 * paths. Findings land in `findings` as they are made, so a file the schema
 * refused, which these rules may not read past, still reports the ones
 * found before (a missing `oidc:` with an unknown key, at once).
 */
export function checkSemantics(config: RawConfig, findings: Finding[] = []): Finding[] {
  const add = (path: (string | number)[], message: string) => findings.push({ path, message })

  // A timer past 2^31 ms fires at once (Node clamps it to 1 ms): a long
  // drain would become none. A day covers any orchestrator's grace period.
  if (parseDuration(config.server.drainTimeout) > MAX_DRAIN_MS)
    add(['server', 'drainTimeout'], 'must be at most 24h')
  checkTimed(config.server.keepAliveTimeout, ['server', 'keepAliveTimeout'], add)
  checkTimed(config.server.sendTimeout, ['server', 'sendTimeout'], add)
  if (orNaN(() => parseDuration(config.server.sendTimeout)) === 0)
    add(
      ['server', 'sendTimeout'],
      'must be more than 0: a browser that stops reading would hold its upstream connection for ever',
    )
  checkTimed(config.tokens.refreshWait, ['tokens', 'refreshWait'], add)
  // A malformed size the schema has reported already.
  const maxTokenSize = orNaN(() => parseSize(config.tokens.maxSize))
  if (maxTokenSize < 1024)
    add(['tokens', 'maxSize'], 'must be at least 1kb: a signed JWT alone takes most of it')
  else if (maxTokenSize > MAX_TOKEN_SIZE)
    add(['tokens', 'maxSize'], 'must be at most 1mb: no identity provider answer larger is read')
  // Node's HTTP server refuses to start with a longer wait for the headers
  // than for the whole request, with a message naming neither option.
  const requestTimeout = orNaN(() => parseDuration(config.server.requestTimeout))
  const headersTimeout = orNaN(() => parseDuration(config.server.headersTimeout))
  if (requestTimeout > 0 && headersTimeout > requestTimeout)
    add(
      ['server', 'headersTimeout'],
      `must be at most server.requestTimeout (${config.server.requestTimeout}): the headers are part of the request`,
    )
  if (config.server.publicUrl !== undefined)
    checkPublicUrl(config.server.publicUrl, ['server', 'publicUrl'], add)
  else if (config.frontends === undefined) add(['server', 'publicUrl'], 'is required')

  const providers = rawProviders(config)
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

  const { secret, secrets } = config.session
  if (secret === undefined && secrets === undefined)
    add(['session', 'secret'], 'is required (or secrets: [new, old])')
  if (secret !== undefined && secrets !== undefined)
    add(['session', 'secrets'], 'set either secret or secrets, not both')
  if (secret !== undefined && secret.length < 32) {
    add(['session', 'secret'], `must be at least 32 characters (got ${secret.length})`)
  }
  secrets?.forEach((s, i) => {
    // An empty one after the first is a place held by `${VAR:-}` (load.ts).
    if (s.length < 32 && !(i > 0 && s === ''))
      add(['session', 'secrets', i], `must be at least 32 characters (got ${s.length})`)
  })

  const store = parseStore(config.session.store)
  if (typeof store === 'string') add(['session', 'store'], store)
  // A brace would start a hash tag of its own and split a session's keys
  // over Redis Cluster slots (Cluster spec, "Hash tags").
  if (/[{}]/.test(config.session.keyPrefix)) add(['session', 'keyPrefix'], 'must not contain { or }')
  if (parseDuration(config.session.absoluteTimeout) < parseDuration(config.session.idleTimeout)) {
    add(['session', 'absoluteTimeout'], 'must not be shorter than idleTimeout')
  }
  const storeTimeout = orNaN(() => parseDuration(config.session.storeTimeout))
  if (storeTimeout === 0)
    add(['session', 'storeTimeout'], 'must be more than 0: every command to Redis has a timeout')
  // Every request may wait this long on a Redis that does not answer,
  // holding its socket and its memory: a minute of that is an outage, not
  // a slow store.
  else if (storeTimeout > MAX_STORE_TIMEOUT)
    add(
      ['session', 'storeTimeout'],
      'must be at most 30s: every request may wait this long on a Redis that does not answer',
    )

  checkBasePath(config.auth.basePath, ['auth', 'basePath'], add)
  config.frontends?.forEach((frontend, i) => {
    checkPublicUrl(frontend.publicUrl, ['frontends', i, 'publicUrl'], add)
    if (frontend.auth.basePath !== undefined)
      checkBasePath(frontend.auth.basePath, ['frontends', i, 'auth', 'basePath'], add)
  })
  findings.push(...checkFrontends(config))
  for (const list of routeLists(config)) checkRoutes(list, providers, names, add)
  const { metrics } = config
  const serverHost = listenHostProblem(config.server.host, 'server')
  if (serverHost !== undefined) add(['server', 'host'], serverHost)
  const metricsHost = metrics.enabled ? listenHostProblem(metrics.host, 'metrics') : undefined
  if (metricsHost !== undefined) add(['metrics', 'host'], metricsHost)
  if (metrics.enabled && metrics.port !== 0 && metrics.port === config.server.port) {
    add(['metrics', 'port'], 'must differ from server.port: /metrics stays off the public listener')
  }
  for (const provider of providers) findings.push(...checkFapi2(config, provider))
  return findings
}

/** One list of routes (`routes`, or a frontend's): each route's own rules, and none twice or over the sign-in endpoints. */
function checkRoutes(
  list: RouteList,
  providers: readonly RawProvider[],
  names: ReadonlyMap<string, number>,
  add: Add,
): void {
  const { basePath } = list
  const seen = new Map<string, number>()
  const read = new Map<string, { readonly index: number; readonly path: string }>()
  list.routes.forEach((route, i) => {
    const at = (...rest: (string | number)[]) => [...list.at, i, ...rest]
    const path = route.path.length > 1 ? route.path.replace(/\/+$/, '') : route.path
    if (
      !path.startsWith('/') ||
      path.includes('//') ||
      /(^|\/)\.\.?(\/|$)/.test(path) ||
      /[?#\s]/.test(path)
    ) {
      add(at('path'), 'must be a path prefix such as /api/orders, without .., query or spaces')
    }
    if (ROUTER_SYNTAX.test(path)) add(at('path'), ROUTER_SYNTAX_PROBLEM)
    const escaped = escapedPathProblem(path)
    if (escaped !== undefined) add(at('path'), escaped)
    const first = seen.get(path)
    if (first !== undefined) add(at('path'), `duplicates ${formatAt(list.at)}[${first}].path (${path})`)
    else seen.set(path, i)
    // The proxy refuses a spelling of a deeper route's path; two routes
    // that read as one lie under neither, and an upstream that folds case
    // or drops what the reading drops serves one's path through the other.
    const reading = upstreamReading(path)
    const twin = read.get(reading)
    if (first === undefined && escaped === undefined && twin !== undefined)
      add(
        at('path'),
        `reads as ${formatAt(list.at)}[${twin.index}].path (${twin.path}) to an upstream that folds case (Express, ASP.NET Core) or drops ;parameters or trailing dots (Tomcat, IIS), which would serve one's path through the other: write them alike, or as paths apart`,
      )
    else if (twin === undefined) read.set(reading, { index: i, path })
    if (
      path === basePath ||
      path.startsWith(`${basePath}/`) ||
      (basePath.startsWith(`${path}/`) && path !== '/')
    ) {
      add(at('path'), `overlaps ${list.basePathName} (${basePath})`)
    }
    if (OWN_PATHS.includes(path)) {
      add(
        at('path'),
        `${path} is served by Gatehouse itself, on every host (its health checks): choose another path`,
      )
    }
    const upstream = parseUrl(route.upstream)
    if (DROPPED_BY_URL_PARSING.test(route.upstream)) {
      add(at('upstream'), DROPPED_IN_URL)
    } else if (!upstream || !['http:', 'https:'].includes(upstream.protocol)) {
      add(at('upstream'), 'must be an http(s) URL such as http://orders:8080')
    } else if (upstream.pathname !== '/' || upstream.search || /[?#]/.test(route.upstream)) {
      // An empty query or fragment (`http://orders:8080?`) parses to none,
      // yet the text is what the proxy's URLs are built from: a DPoP proof's
      // `htu` would name the origin's root for every request (RFC 9449 §4.2).
      add(
        at('upstream'),
        'must be an origin only, without a query or fragment; use rewritePath to change the path',
      )
    } else if (carriesCredentials(upstream)) {
      // Never sent (the upstream gets the route's token), yet written into
      // every start-up and reload line that lists the routes.
      add(at('upstream'), CREDENTIALS_IN_URL)
    } else if (route.tls !== undefined && upstream.protocol !== 'https:') {
      add(at('tls'), 'applies only to an https upstream')
    }
    const rewriteProblem = route.rewritePath === undefined ? undefined : rewritePathProblem(route.rewritePath)
    if (rewriteProblem !== undefined) add(at('rewritePath'), rewriteProblem)
    if (route.token === 'none' && route.scopes.length > 0) {
      add(at('scopes'), 'applies only to routes that forward a token (user, optional-user, client)')
    }
    checkScopes(route.scopes, at('scopes'), add)
    checkTimed(route.timeout, at('timeout'), add, 'an upstream')
    checkExchange(route, at, add)
    if (route.resource !== undefined) {
      if (route.token !== 'user' && route.token !== 'optional-user') {
        add(at('resource'), 'applies only to token: user and optional-user routes')
      }
      // RFC 8707 §2: an absolute URI, without a fragment.
      const resource = parseUrl(route.resource)
      if (DROPPED_BY_URL_PARSING.test(route.resource)) {
        add(at('resource'), DROPPED_IN_URL)
      } else if (!resource || !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(route.resource)) {
        add(at('resource'), 'must be an absolute URI such as https://orders.example')
      } else if (route.resource.includes('#')) {
        add(at('resource'), 'must not contain a fragment (RFC 8707 §2)')
      }
    }
    // RFC 6455 §4.1: the opening handshake is a GET.
    if (route.websocket && route.methods !== undefined && !route.methods.includes('GET')) {
      add(at('methods'), 'must include GET on a websocket route: the upgrade is a GET')
    }
    // A route of a frontend serves only the sessions of the providers the frontend signs in with.
    const served = servedProviders(providers, route.identityProviders ?? list.identityProviders)
    route.identityProviders?.forEach((name, j) => {
      if (names.has(name)) return
      const known = [...names.keys()].join(', ')
      add(at('identityProviders', j), `names no provider of identityProviders (${known})`)
    })
    // `dpop: false` means something without oidc.dpop too (a session that
    // signed in while it was on sends bearer there), so only `true` can be wrong.
    if (route.dpop === true) {
      if (route.token === 'client') {
        // Bound or not, the gateway's token comes from one provider, whatever the others do.
        const source = clientTokenProvider(providers, route.identityProviders, list.identityProviders)
        if (source !== undefined && !source.oidc.dpop)
          add(at('dpop'), `needs ${clientDpopProvider(providers, source, route.identityProviders, list)}`)
      } else if (served.find((p) => p.oidc.dpop) === undefined)
        add(at('dpop'), `needs ${dpopProvider(providers, route.identityProviders, list)}`)
      else if (route.token === 'none') add(at('dpop'), 'applies only to routes that forward a token')
    }
    if (route.token !== 'client' && route.anonymous !== undefined) {
      add(at('anonymous'), 'applies only to token: client routes')
    }
    const bounds = route.websocket
    if (typeof bounds === 'object') {
      // Either may be malformed too, which the schema has reported already.
      const ping = orNaN(() => parseDuration(bounds.pingInterval))
      const maxMessage = orNaN(() => parseSize(bounds.maxMessage))
      if (ping <= 0)
        add(at('websocket', 'pingInterval'), 'must be more than 0: pings are how a dead peer is found')
      // Node runs a longer timer at once, and then every millisecond.
      else if (ping > MAX_PING_INTERVAL) add(at('websocket', 'pingInterval'), 'must be at most 1d')
      // A message is held whole before it is relayed; `ws` also reads a
      // limit of 2 GiB or more as none at all.
      if (maxMessage > MAX_MESSAGE) add(at('websocket', 'maxMessage'), 'must be at most 100mb')
    }
    route.passHeaders.forEach((name, j) => {
      const folded = foldUnderscores(name.toLowerCase())
      if (!FIELD_NAME.test(name)) add(at('passHeaders', j), 'must be a header name')
      else if (TRACE_CONTEXT.includes(folded)) {
        add(
          at('passHeaders', j),
          `${name} is trace context, which Gatehouse never passes from a client (see docs/observability.md)`,
        )
      } else if (NEVER_PASSED.includes(folded)) {
        add(at('passHeaders', j), `${name} is set or consumed by Gatehouse itself; it cannot pass`)
      } else if (!isSpoofable(folded)) {
        add(
          at('passHeaders', j),
          `${name} is not a header Gatehouse strips, so it passes already (see docs/security.md)`,
        )
      }
    })
  })
}

/** What a `dpop: true` route lacks: a provider with `dpop: true` among those whose sessions it serves. */
function dpopProvider(
  providers: readonly RawProvider[],
  listed: readonly string[] | undefined,
  list: RouteList,
): string {
  if (providers.length <= 1) return `${optionName(providers[0]?.path ?? ['oidc'], 'dpop')}: true`
  if (listed === undefined && list.identityProviders !== undefined)
    return `a provider with dpop: true among those its frontend signs in with (${formatAt([...list.at.slice(0, 2), 'identityProviders'])}: ${list.identityProviders.join(', ')})`
  return 'a provider of the route with dpop: true'
}

/** What a `dpop: true` client route lacks: DPoP at the provider its token comes from. */
function clientDpopProvider(
  providers: readonly RawProvider[],
  source: RawProvider,
  listed: readonly string[] | undefined,
  list: RouteList,
): string {
  const option = `${optionName(source.path, 'dpop')}: true`
  if (providers.length <= 1) return option
  const which =
    listed !== undefined
      ? 'the first provider the route lists'
      : list.identityProviders !== undefined
        ? `the first provider its frontend signs in with (${formatAt([...list.at.slice(0, 2), 'identityProviders'])})`
        : 'the first provider'
  return `${option}: a token: client route's token comes from ${source.name}, ${which}`
}

/** The providers whose sessions a route serves: those it lists, or all. */
export function servedProviders(
  providers: readonly RawProvider[],
  listed: readonly string[] | undefined,
): RawProvider[] {
  return listed === undefined ? [...providers] : providers.filter((p) => listed.includes(p.name))
}

const MAX_DRAIN_MS = 24 * 60 * 60 * 1000

/** What is valid but worth a second look: the config still loads. */
export function checkWarnings(config: RawConfig): Finding[] {
  const findings: Finding[] = []
  // The route whose requests may run longest, if the drain would cut them off.
  let longest: { at: string; timeout: string | number; ms: number } | undefined
  for (const list of routeLists(config)) {
    list.routes.forEach((route, i) => {
      const ms = parseDuration(route.timeout)
      if (ms > (longest?.ms ?? parseDuration(config.server.drainTimeout)))
        longest = { at: formatAt([...list.at, i, 'timeout']), timeout: route.timeout, ms }
      if (route.token === 'client' && route.anonymous === true) {
        findings.push({
          path: [...list.at, i, 'anonymous'],
          message: `${route.path} serves callers without a session: anyone who reaches it spends the gateway's client credentials`,
        })
      }
    })
  }
  findings.push(...unusedProviders(config))
  for (const { oidc, path } of rawProviders(config)) {
    const warning = oidc.clientSecret === undefined ? undefined : clientSecretWarning(oidc.clientSecret)
    if (warning) findings.push({ path: [...path, 'clientSecret'], message: warning })
  }
  const { secret, secrets } = config.session
  const sessionSecrets: [(string | number)[], string][] =
    secret === undefined
      ? (secrets ?? []).map((s, i) => [['session', 'secrets', i], s])
      : [[['session', 'secret'], secret]]
  for (const [path, value] of sessionSecrets) {
    const warning = sessionSecretWarning(value)
    if (warning) findings.push({ path, message: warning })
  }
  if (longest) {
    findings.push({
      path: ['server', 'drainTimeout'],
      message: `drainTimeout: ${config.server.drainTimeout} is shorter than ${longest.at} (${longest.timeout}): a request on that route still running at SIGTERM is cut off when the drain ends`,
    })
  }
  return findings
}
