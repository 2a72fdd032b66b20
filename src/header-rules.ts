/**
 * Request headers a client may not pass through Gatehouse: the rules the
 * proxy applies on every request and that config validation holds every
 * route to, kept here so neither folder has to reach into the other.
 */

/**
 * Request headers Gatehouse sets itself: a client's copy is always
 * replaced, and no route may pass one through (`gatehouse check` refuses it).
 */
export const GATEWAY_SET: readonly string[] = [
  'authorization',
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
  // Credentials for a proxy (RFC 9110 §11.7.2): consumed by the hop they are for, never passed on.
  'proxy-authorization',
])

const SPOOFABLE_PREFIXES: readonly string[] = ['x-auth-request-', 'x-remote-extra-']

/**
 * A header name (lower case, as Node gives it) as servers that fold `_`
 * into `-` read it: Node keeps `X_Forwarded_For` apart from
 * `X-Forwarded-For`, but CGI-style stacks (PHP, WSGI, Rack) see one name.
 */
export function foldUnderscores(name: string): string {
  return name.includes('_') ? name.replaceAll('_', '-') : name
}

/** True for a name under one of the stripped prefixes (`X-Auth-Request-*`, `X-Remote-Extra-*`). */
export function hasSpoofablePrefix(folded: string): boolean {
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
