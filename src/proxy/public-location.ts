/** What maps an upstream's redirect back to the browser's view of one route. */
export interface RoutePrefixes {
  /** The route's public path prefix, `''` for the root. */
  readonly prefix: string
  /** What the upstream calls that prefix, `''` for its root. */
  readonly rewritePrefix: string
  /** The upstream's origin, as `URL` writes one: its redirects may name it. */
  readonly upstreamOrigin: string
}

const ABSOLUTE = /^https?:\/\//i

/**
 * A path a browser reads as naming another host: two slashes at its start,
 * either way round (the WHATWG URL parser reads `\` as `/` in an http(s)
 * URL), with any tab or newline between them, which the parser drops.
 */
const ANOTHER_HOST = /^[/\\][\t\n\r]*[/\\]/

/**
 * The `Location` of an upstream's redirect as the browser must follow it:
 * a path under the upstream's `rewritePrefix`, or a URL of the upstream's
 * own origin (frameworks build one from `Host`, which is the upstream's;
 * nginx's `proxy_redirect default` maps the same), becomes that path under
 * the route's public `prefix`. The prefix is matched by whole path
 * segments, so `/v1x` is not under `/v1`. Anything else (another origin, a
 * path outside the prefix, a path that mapped would name another host) is
 * passed on as the upstream wrote it.
 */
export function publicLocation(location: string, route: RoutePrefixes): string {
  let path = location
  if (ABSOLUTE.test(location)) {
    let url: URL
    try {
      url = new URL(location)
    } catch {
      return location
    }
    if (url.origin !== route.upstreamOrigin) return location
    path = url.pathname + url.search + url.hash
  } else if (!location.startsWith('/') || location.startsWith('//')) return location
  const { prefix, rewritePrefix } = route
  if (!path.startsWith(rewritePrefix)) return location
  const rest = path.slice(rewritePrefix.length)
  // Only a whole segment: the prefix ends the path, or a `/`, `?` or `#` follows it.
  if (rest !== '' && rest[0] !== '/' && rest[0] !== '?' && rest[0] !== '#') return location
  const mapped = prefix + rest
  // The root route's `/v1//evil.example/` is a path on the upstream; mapped
  // to `//evil.example/` it would send the browser off the gateway's origin.
  if (ANOTHER_HOST.test(mapped)) return location
  return mapped === '' || mapped[0] !== '/' ? `/${mapped}` : mapped
}
