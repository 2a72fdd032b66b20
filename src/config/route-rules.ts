/*
 * The rules of each list of routes (`routes:`, or a frontend's) that the
 * schema cannot say: paths apart and clear of the sign-in endpoints, the
 * upstream's URL, and options that apply only with others.
 */
import { foldUnderscores, isSpoofable, NEVER_PASSED, TRACE_CONTEXT } from '../header-rules.js'
import { upstreamReading } from '../path-reading.js'
import { parseDuration, parseSize } from './duration.js'
import { checkExchange } from './exchange.js'
import type { Add } from './finding.js'
import { formatAt, type RouteList } from './frontend-rules.js'
import { HEALTH_PATHS, ROUTER_SYNTAX, ROUTER_SYNTAX_PROBLEM } from './own-paths.js'
import { clientTokenProvider, optionName, type RawProvider } from './providers.js'
import { escapedPathProblem, rewritePathProblem } from './route-paths.js'
import { checkScopes } from './scope-token.js'
import { checkTimed, orNaN } from './timer-bounds.js'
import {
  CREDENTIALS_IN_URL,
  carriesCredentials,
  DROPPED_BY_URL_PARSING,
  DROPPED_IN_URL,
  parseUrl,
} from './url-rules.js'

/** RFC 9110 §5.1: a field name is a token. */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** `routes[].websocket.pingInterval` at most: 1 d, well inside Node's 2^31 - 1 ms timers. */
const MAX_PING_INTERVAL = 86_400_000
/** `routes[].websocket.maxMessage` at most: 100 MiB, `ws`'s own default. */
const MAX_MESSAGE = 100 * 1024 * 1024
const OWN_PATHS: readonly string[] = Object.values(HEALTH_PATHS)

/** One list of routes (`routes`, or a frontend's): each route's own rules, and none twice or over the sign-in endpoints. */
export function checkRoutes(
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
function servedProviders(
  providers: readonly RawProvider[],
  listed: readonly string[] | undefined,
): RawProvider[] {
  return listed === undefined ? [...providers] : providers.filter((p) => listed.includes(p.name))
}
