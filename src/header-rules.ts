/**
 * The header rules of the proxy, in one place: the hop-by-hop headers that
 * cross no proxy in either direction, and the request headers a client may
 * not pass through Gatehouse. The proxy applies them to every request and
 * answer, and config validation holds every route to them; they live here
 * so that neither folder has to reach into the other.
 */

/**
 * Request headers Gatehouse sets itself: a client's copy is always
 * replaced, and no route may pass one through (`gatehouse check` refuses it).
 */
export const GATEWAY_SET: readonly string[] = [
  'authorization',
  // RFC 9449 §4.1: a proof is the gateway's, made for the token it forwards.
  'dpop',
  'cookie',
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
]

/**
 * Client headers that claim something only a proxy or an authenticating
 * hop can know (where the client is, how it came in, who it is), which an
 * upstream behind Gatehouse may believe. Stripped from every request unless
 * the route names them in `passHeaders`. docs/security.md explains each group.
 */
export const SPOOFABLE: ReadonlySet<string> = new Set([
  // Where the client is and how it came in: RFC 7239, and the de facto ones
  // of load balancers and CDNs.
  'forwarded',
  'x-forwarded',
  'forwarded-for',
  'x-real-ip',
  'true-client-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-server',
  'x-forwarded-ssl',
  'x-forwarded-scheme',
  'x-original-host',
  // Paths a framework may route by instead of the request line (IIS, Symfony, nginx auth_request).
  'x-original-url',
  'x-rewrite-url',
  'x-original-uri',
  // Who the user is, as authenticating proxies tell their upstreams
  // (oauth2-proxy, Apache, Authelia, Kubernetes, Grafana's auth proxy).
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-groups',
  'x-forwarded-preferred-username',
  'x-forwarded-access-token',
  'x-remote-user',
  'x-remote-group',
  'x-remote-email',
  'remote-user',
  'x-webauth-user',
  // Authelia and Authentik send the rest of the user beside Remote-User.
  'remote-groups',
  'remote-email',
  'remote-name',
  // A client certificate a TLS-terminating hop verified (Envoy, Istio): an
  // mTLS identity such as a SPIFFE id.
  'x-forwarded-client-cert',
  // Paths a framework may route by instead of the request line (Traefik's
  // forward auth, some ingress controllers).
  'x-forwarded-uri',
  'x-forwarded-path',
  // The method a framework then dispatches on instead of the request's own
  // (Express's method-override, Rails, Symfony, ASP.NET, OData): a GET that
  // the route's `methods` allow, or a CORS-simple POST, would run as a DELETE.
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  // Credentials for a proxy (RFC 9110 §11.7.2): consumed by the hop they are for, never passed on.
  'proxy-authorization',
])

/**
 * Whole families: oauth2-proxy's and the Kubernetes authenticating proxy's,
 * then those cloud front ends use to tell an app who signed in (AWS ALB,
 * Azure App Service's Easy Auth, Google IAP, Cloudflare Access), and the
 * client certificate nginx or HAProxy verified.
 */
const SPOOFABLE_PREFIXES: readonly string[] = [
  'x-auth-request-',
  'x-remote-extra-',
  'x-amzn-oidc-',
  'x-ms-client-principal',
  'x-goog-authenticated-user-',
  'cf-access-',
  'x-ssl-client-',
]

/**
 * A header name (lower case, as Node gives it) as servers that fold `_`
 * into `-` read it: Node keeps `X_Forwarded_For` apart from
 * `X-Forwarded-For`, but CGI-style stacks (PHP, WSGI, Rack) see one name.
 */
export function foldUnderscores(name: string): string {
  return name.includes('_') ? name.replaceAll('_', '-') : name
}

/** True for a name under one of the stripped prefixes (`X-Auth-Request-*`, `Cf-Access-*`…). */
export function hasSpoofablePrefix(folded: string): boolean {
  // Runs on every request header: every prefix starts with `x` or `c`.
  const first = folded.charCodeAt(0)
  if (first !== 120 && first !== 99) return false
  for (const prefix of SPOOFABLE_PREFIXES) if (folded.startsWith(prefix)) return true
  return false
}

/** True for a (folded) name on the strip list. */
export function isSpoofable(folded: string): boolean {
  return SPOOFABLE.has(folded) || hasSpoofablePrefix(folded)
}

/** Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and never cross a proxy. */
export const HOP_BY_HOP: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]

const hopByHop: ReadonlySet<string> = new Set(HOP_BY_HOP)

/**
 * W3C Trace Context and W3C Baggage as a client sends them. Whoever sends
 * `traceparent` chooses the trace id and the sampled flag (W3C Trace
 * Context §3): passed on, an upstream that traces would join whatever trace
 * a browser named, and take its sampling decision, tracing on or off; and
 * baggage is whatever the browser wrote, read by each service below as if
 * a service had set it. With tracing on, the gateway sends its own trace
 * context on every outbound call (docs/observability.md), and no baggage.
 */
export const TRACE_CONTEXT: readonly string[] = ['traceparent', 'tracestate', 'baggage']

/**
 * Request headers that never reach the upstream as the client sent them,
 * and that no route may pass through: those the gateway sets itself
 * (`Host` is the upstream's, set by undici), the hop-by-hop ones, the
 * client's trace context, and `Expect`: the gateway answers `100-continue`
 * itself (src/guards/expect-continue.ts; Node answers 417 to any other
 * expectation), so the expectation is met at this hop, which RFC 9110
 * §10.1.1 allows a proxy, and undici refuses to send it at all.
 */
export const NEVER_PASSED: readonly string[] = [...GATEWAY_SET, 'expect', ...HOP_BY_HOP, ...TRACE_CONTEXT]

/**
 * Header names a `Connection` header lists besides its own options
 * (`close`, `keep-alive`): RFC 9110 §7.6.1 makes them hop-by-hop too, so a
 * proxy removes them whichever way the message goes.
 */
export function connectionNamed(value: string | string[] | undefined): string[] | undefined {
  // What nearly every message says, as Node and browsers spell it: nothing to split.
  if (value === undefined || value === 'keep-alive' || value === 'close') return undefined
  const names: string[] = []
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const name = part.trim().toLowerCase()
    if (name !== '' && name !== 'close' && name !== 'keep-alive') names.push(name)
  }
  return names.length === 0 ? undefined : names
}

/**
 * True for a header (lower case) of a message that must not cross this hop:
 * one on the fixed list, or one its `Connection` header names
 * (`named`, from `connectionNamed`).
 */
export function isHopByHop(name: string, named: readonly string[] | undefined): boolean {
  return hopByHop.has(name) || named?.includes(name) === true
}
