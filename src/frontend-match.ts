/**
 * Which frontend a request is for, from its host and path: the rule the
 * config checks (every route and sign-in endpoint must land in its own
 * frontend) and the gateway routes by. One map lookup by host, then a short
 * list of path prefixes, longest first, so the cost does not grow with the
 * number of hosts.
 *
 * The rule: the frontends of the request's host name (any port) are tried
 * first, then those without a host; among them, the longest `pathPrefix`
 * that contains the path, on whole segments (a query or a fragment ends
 * the path), wins. A frontend without a prefix contains every path.
 */

/** What a frontend is matched by. */
export interface FrontendMatch {
  /** Lower-case host name; `undefined`: any host. */
  readonly host: string | undefined
  /** No trailing slash; `''`: every path. */
  readonly pathPrefix: string
}

export class FrontendMatcher<F extends FrontendMatch> {
  readonly #byHost = new Map<string, readonly F[]>()
  readonly #anyHost: readonly F[]

  constructor(frontends: readonly F[]) {
    const longestFirst = (a: F, b: F) => b.pathPrefix.length - a.pathPrefix.length
    const hosts = new Map<string, F[]>()
    for (const frontend of frontends) {
      if (frontend.host === undefined) continue
      const list = hosts.get(frontend.host) ?? []
      list.push(frontend)
      hosts.set(frontend.host, list)
    }
    for (const [host, list] of hosts) this.#byHost.set(host, list.sort(longestFirst))
    this.#anyHost = frontends.filter((f) => f.host === undefined).sort(longestFirst)
  }

  /**
   * The frontend of a request. `host` is the Host header as sent (a port is
   * ignored; letters may be upper-case), `path` the request target, query
   * included or not.
   */
  select(host: string | undefined, path: string): F | undefined {
    const named = host === undefined ? undefined : this.#byHost.get(hostName(host))
    return (named && within(named, path)) ?? within(this.#anyHost, path)
  }
}

function within<F extends FrontendMatch>(frontends: readonly F[], path: string): F | undefined {
  for (const frontend of frontends) if (contains(frontend.pathPrefix, path)) return frontend
  return undefined
}

/**
 * `prefix` contains `path` on whole segments: `/a` contains `/a`, `/a/b`,
 * `/a?x` and `/a#x`, not `/ab` nor `/a%23x`.
 */
function contains(prefix: string, path: string): boolean {
  if (prefix === '') return true
  if (!path.startsWith(prefix)) return false
  const next = path.charCodeAt(prefix.length)
  // End of path, `/`, `?`, `#`: the prefix ends on a segment boundary. A
  // request target has no fragment (refused before routing), but a
  // returnTo does: a hash-routed SPA's `/portal#/orders` is `/portal`'s.
  return Number.isNaN(next) || next === 47 || next === 63 || next === 35
}

/** The name of a Host value: lower-case, without the port; an IPv6 literal keeps its brackets. */
function hostName(host: string): string {
  const colon = host.lastIndexOf(':')
  const name = colon > host.lastIndexOf(']') ? host.slice(0, colon) : host
  // Host names are case-insensitive (RFC 3986 §3.2.2); most arrive lower-case already.
  return /[A-Z]/.test(name) ? name.toLowerCase() : name
}
