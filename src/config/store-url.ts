/**
 * `session.store`, parsed once at load into what the connection code needs:
 * a single Redis, a Sentinel-managed primary, or a Redis Cluster. Nothing
 * downstream parses the string again.
 */

/** One `host:port` of a Sentinel or Cluster seed list. */
export interface RedisNode {
  readonly host: string
  readonly port: number
}

interface Credentials {
  readonly username?: string
  readonly password?: string
  /** `rediss+…`: TLS to every node (and to the sentinels). */
  readonly tls: boolean
  /** The form as written, with any password replaced by `***`, for logs. */
  readonly display: string
}

export type StoreConfig =
  | { readonly kind: 'memory'; readonly display: 'memory' }
  /**
   * `redis://` or `rediss://`: handed to ioredis as written. `display` hides
   * the userinfo password, every query credential and any fragment.
   */
  | { readonly kind: 'redis'; readonly url: string; readonly display: string }
  | (Credentials & {
      readonly kind: 'sentinel'
      readonly sentinels: readonly RedisNode[]
      /** The master name the sentinels monitor. */
      readonly name: string
      readonly db: number
    })
  | (Credentials & { readonly kind: 'cluster'; readonly nodes: readonly RedisNode[] })

/** The Redis forms; `memory` excluded. */
export type RedisStoreConfig = Exclude<StoreConfig, { kind: 'memory' }>

/** Parses `session.store`; a string is the reason it is not valid. */
export function parseStore(value: string): StoreConfig | string {
  if (value === 'memory') return { kind: 'memory', display: 'memory' }
  const scheme = /^([a-z+]+):\/\//.exec(value)?.[1]
  if (scheme === 'redis' || scheme === 'rediss') {
    // redis: is not a WHATWG special scheme, so its authority ends at the
    // first /, ? or #: a password holding a raw one would leave the rest,
    // password included, in the path, query or fragment that `display` keeps,
    // and ioredis (which parses this same string with WHATWG URL) would dial
    // the user name as the host. An @ after that point may equally be a raw
    // password character or belong to the path or query (`?name=a@b`), so
    // rather than guess, and connect somewhere other than what `display`
    // shows, the user is asked to percent-encode.
    const rest = value.slice(scheme.length + 3)
    const authorityEnd = rest.search(/[/?#]/)
    if (authorityEnd !== -1 && rest.includes('@', authorityEnd)) {
      return 'has an @ after a /, ? or #, so where the password ends is ambiguous: percent-encode the password (/ as %2F, ? as %3F, # as %23, @ as %40)'
    }
    const url = tryUrl(value)
    if (!url || !url.hostname) return 'is not a valid Redis URL'
    // ioredis decodes them when it connects, and a bad escape there is a
    // URIError at start-up, not a problem with a line.
    if (typeof parseUserinfo(`${url.username}:${url.password}`) === 'string')
      return 'has credentials that are not valid percent-encoding'
    // ioredis takes the path's database, else the query's `db`, through
    // parseInt: `x` became SELECT NaN, refused by Redis at start-up with a
    // message naming no option, and `0/app` silently database 0.
    const db = url.pathname.length > 1 ? url.pathname.slice(1) : url.searchParams.get('db')
    if (db !== null && !/^\d+$/.test(db)) return `has a database "${db}" that is not a number`
    return { kind: 'redis', url: value, display: redact(url) }
  }
  // Credentials end at the last @: a password typed with a raw @ or / (not
  // percent-encoded) is still the password, and never read as a host that a
  // problem would then quote.
  const form = /^(rediss?)\+(sentinel|cluster):\/\/(.*)$/s.exec(value)
  const afterScheme = form?.[3] ?? ''
  const at = afterScheme.lastIndexOf('@')
  const userinfo = at === -1 ? undefined : afterScheme.slice(0, at)
  const target = /^([^/?#]+)(\/[^?#]*)?$/.exec(afterScheme.slice(at + 1))
  if (!form || !target) {
    return scheme && /^rediss?\+/.test(scheme)
      ? `is not a valid ${scheme}:// URL: expected ${scheme}://[user:pass@]host:port[,host:port…]${scheme.endsWith('sentinel') ? '/master[/db]' : ''}`
      : 'must be memory, or a redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster:// URL'
  }
  const base = form[1]!
  const kind = form[2] as 'sentinel' | 'cluster'
  const hostList = target[1]!
  const path = target[2] ?? ''
  const nodes: RedisNode[] = []
  for (const part of hostList.split(',')) {
    const node = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(part)
    const port = Number(node?.[2])
    if (!node || port < 1 || port > 65_535) return `has an invalid host:port "${part}"`
    nodes.push({ host: node[1]!.replace(/^\[|\]$/g, ''), port })
  }
  const credentials = parseUserinfo(userinfo)
  if (typeof credentials === 'string') return credentials
  const tls = base === 'rediss'
  const display = `${base}+${kind}://${userinfo ? `${credentials.username ?? ''}${credentials.password ? ':***' : ''}@` : ''}${hostList}${path}`
  const segments = path.split('/').filter(Boolean)
  if (kind === 'cluster') {
    // Redis Cluster has one database (CLUSTER spec: SELECT is refused).
    if (segments.length > 0) return 'takes no path: Redis Cluster has no databases to select'
    return { kind, nodes, tls, display, ...credentials }
  }
  const [name, db = '0', ...rest] = segments
  if (!name || rest.length > 0)
    return 'needs the master name: redis+sentinel://host:port[,host:port…]/master[/db]'
  if (!/^\d+$/.test(db)) return `has a database "${db}" that is not a number`
  return {
    kind,
    sentinels: nodes,
    name: decodeURIComponent(name),
    db: Number(db),
    tls,
    display,
    ...credentials,
  }
}

function parseUserinfo(userinfo: string | undefined): { username?: string; password?: string } | string {
  if (!userinfo) return {}
  const colon = userinfo.indexOf(':')
  try {
    const username = decodeURIComponent(colon === -1 ? userinfo : userinfo.slice(0, colon))
    const password = colon === -1 ? undefined : decodeURIComponent(userinfo.slice(colon + 1))
    return { ...(username ? { username } : {}), ...(password ? { password } : {}) }
  } catch {
    return 'has credentials that are not valid percent-encoding'
  }
}

function tryUrl(value: string): URL | undefined {
  try {
    return new URL(value)
  } catch {
    return undefined
  }
}

/** A query parameter that carries a credential: `password`, `sentinelPassword`, a TLS `passphrase`. */
const CREDENTIAL_PARAM = /pass|secret|token|auth/i

function redact(url: URL): string {
  if (url.password) url.password = '***'
  // ioredis reads every query parameter as an option of its own (utils
  // parseURL), `?password=` included; keys are compared percent-decoded, as
  // it reads them.
  for (const key of new Set(url.searchParams.keys()))
    if (CREDENTIAL_PARAM.test(key)) url.searchParams.set(key, '***')
  // ioredis ignores a fragment, but a raw # in a query password leaves the
  // rest of the password there.
  if (url.hash) url.hash = '***'
  return url.href
}
