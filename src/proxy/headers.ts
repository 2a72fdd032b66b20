import type { IncomingHttpHeaders } from 'node:http'

/**
 * Removes Gatehouse's own cookies from a `Cookie` header and keeps the
 * rest: the session cookie is a bearer credential for the gateway and must
 * never reach an upstream. Returns `undefined` when nothing is left.
 */
export function stripCookies(header: string | undefined, names: readonly string[]): string | undefined {
  if (!header) return undefined
  // Requests for static files, or with no session yet, often carry none of
  // ours: then there is nothing to split.
  if (!names.some((name) => header.includes(name))) return header
  let kept = ''
  for (const part of header.split(';')) {
    const pair = part.trim()
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const name = eq === -1 ? pair : pair.slice(0, eq)
    if (names.includes(name)) continue
    kept = kept === '' ? pair : `${kept}; ${pair}`
  }
  return kept === '' ? undefined : kept
}

/** The parts of a Fastify request the rewrite reads, over HTTP/1 or HTTP/2. */
export interface ForwardedRequest {
  readonly upstreamToken: string | null
  readonly ip: string
  readonly protocol: string
  readonly host: string
  readonly socket: { readonly remoteAddress?: string | undefined }
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

/**
 * Request headers that never reach the upstream as the client sent them:
 * those the gateway sets itself, the hop-by-hop ones, `Host`, which undici
 * sets to the upstream's, and `Expect`. Node's server answers
 * `100-continue` itself before any hook runs (and 417 to any other
 * expectation), so the expectation is met at this hop and the body is
 * already on its way: RFC 9110 §10.1.1 lets a proxy answer it rather than
 * pass it on, and undici refuses to send it at all.
 */
const replaced = new Set([
  'cookie',
  'authorization',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'host',
  'expect',
  ...HOP_BY_HOP,
])

/** Header names a `Connection` header lists besides its own options: hop-by-hop too. */
export function connectionNamed(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined
  const names: string[] = []
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const name = part.trim().toLowerCase()
    if (name !== '' && name !== 'close' && name !== 'keep-alive') names.push(name)
  }
  return names.length === 0 ? undefined : names
}

/**
 * Builds the request-header rewrite of one route: our cookies out, any
 * incoming Authorization replaced by the gateway's token (or dropped),
 * hop-by-hop headers dropped, and X-Forwarded-* set from what this hop saw.
 */
export function headerRewriter(cookieNames: readonly string[], trustProxy: boolean) {
  return function rewrite(request: ForwardedRequest, headers: IncomingHttpHeaders): IncomingHttpHeaders {
    // One pass into a fresh object: `delete` would turn it into a slow
    // dictionary that undici then walks to serialise the request.
    const out: IncomingHttpHeaders = {}
    // A client must not be able to strip a header the gateway adds by naming it.
    const named = connectionNamed(headers.connection)
    for (const name in headers) {
      if (replaced.has(name) || named?.includes(name)) continue
      out[name] = headers[name]
    }
    const cookie = stripCookies(headers.cookie, cookieNames)
    if (cookie !== undefined) out.cookie = cookie

    const token = request.upstreamToken
    if (token !== null) out.authorization = `Bearer ${token}`

    // Without a trusted proxy in front, a client-sent X-Forwarded-For is a
    // lie we must not pass on; with one, append to its chain.
    const prior = trustProxy ? headers['x-forwarded-for'] : undefined
    out['x-forwarded-for'] = prior ? `${prior}, ${request.socket.remoteAddress}` : request.ip
    out['x-forwarded-proto'] = request.protocol
    out['x-forwarded-host'] = request.host
    return out
  }
}
