import type { IncomingHttpHeaders } from 'node:http'
import {
  connectionNamed,
  foldUnderscores,
  hasSpoofablePrefix,
  isSpoofable,
  NEVER_PASSED,
  SPOOFABLE,
} from '../header-rules.js'
import type { OwnCookies } from './own-cookies.js'

/** The cookie parser the session plugin reads cookies with (@fastify/cookie's). */
export type CookieParser = (header: string) => Record<string, string | undefined>

/**
 * Removes Gatehouse's own cookies from a `Cookie` header and keeps the
 * rest: the session cookie is a bearer credential for the gateway and must
 * never reach an upstream. Each pair goes through the session plugin's own
 * parser, so a name it would read as ours (`gatehouse =v`, with a tab, in
 * another case, twice) is never forwarded. Returns `undefined` when nothing
 * is left.
 */
export function stripCookies(
  header: string | undefined,
  own: OwnCookies,
  parse: CookieParser,
): string | undefined {
  if (!header) return undefined
  // Requests for static files, or with no session yet, often carry none of
  // ours: then there is nothing to split.
  if (!own.mentioned(header)) return header
  let kept = ''
  for (const part of header.split(';')) {
    const pair = part.trim()
    if (pair === '') continue
    // The session cookie as we set it needs no parse; a name that only
    // mentions ours (padded, another case) is read as the plugin reads it.
    const eq = pair.indexOf('=')
    if (eq !== -1) {
      const name = pair.slice(0, eq)
      if (own.isExact(name) || (own.mentioned(name) && ownsAny(parse(pair), own))) continue
    }
    kept = kept === '' ? pair : `${kept}; ${pair}`
  }
  return kept === '' ? undefined : kept
}

function ownsAny(cookies: Record<string, unknown>, own: OwnCookies): boolean {
  for (const name in cookies) if (own.owns(name)) return true
  return false
}

/** The parts of a Fastify request the rewrite reads, over HTTP/1 or HTTP/2. */
export interface ForwardedRequest {
  readonly upstreamToken: string | null
  /** The DPoP proof made for this request; with it the token goes as `DPoP`, not `Bearer`. */
  readonly upstreamProof?: string | null
  readonly ip: string
  readonly protocol: string
  readonly host: string
  readonly socket: { readonly remoteAddress?: string | undefined }
}

/** Request headers that never reach the upstream as the client sent them (see `NEVER_PASSED`). */
const replaced: ReadonlySet<string> = new Set(NEVER_PASSED)

export interface HeaderRewriteOptions {
  readonly own: OwnCookies
  readonly parseCookie: CookieParser
  readonly trustProxy: boolean
  /** `server.publicUrl`: the origin this gateway serves, whatever Host a client sent. */
  readonly publicUrl: string
  /** Spoofable headers this route forwards anyway (lower case). */
  readonly passHeaders: readonly string[]
}

/**
 * Builds the request-header rewrite of one route: our cookies out, any
 * incoming Authorization replaced by the gateway's token (or dropped),
 * hop-by-hop and spoofable forwarding or identity headers dropped, the
 * client's trace context and baggage dropped (with tracing on, the gateway
 * adds its own after this rewrite), and X-Forwarded-* set from what this
 * hop knows.
 */
export function headerRewriter(options: HeaderRewriteOptions) {
  const { own, parseCookie, trustProxy } = options
  const pass = new Set(options.passHeaders.filter((name) => !replaced.has(name)))
  // One lookup on the hot path for every name dropped as it is spelled.
  const dropped = new Set([...replaced, ...[...SPOOFABLE].filter((name) => !pass.has(name))])
  const origin = new URL(options.publicUrl)
  const publicProto = origin.protocol.slice(0, -1)
  const publicHost = origin.host
  return function rewrite(request: ForwardedRequest, headers: IncomingHttpHeaders): IncomingHttpHeaders {
    // One pass into a fresh object: `delete` would turn it into a slow
    // dictionary that undici then walks to serialise the request.
    const out: IncomingHttpHeaders = {}
    // A client must not be able to strip a header the gateway adds by naming it.
    const named = connectionNamed(headers.connection)
    for (const name in headers) {
      if (dropped.has(name) || named?.includes(name)) continue
      if (name.includes('_')) {
        const folded = foldUnderscores(name)
        if (replaced.has(folded) || (isSpoofable(folded) && !pass.has(name))) continue
      } else if (hasSpoofablePrefix(name) && !pass.has(name)) continue
      out[name] = headers[name]
    }
    const cookie = stripCookies(headers.cookie, own, parseCookie)
    if (cookie !== undefined) out.cookie = cookie

    const token = request.upstreamToken
    const proof = request.upstreamProof
    if (token !== null) {
      // RFC 9449 §7.1: a DPoP-bound token goes with the DPoP scheme and its proof.
      if (proof) {
        out.authorization = `DPoP ${token}`
        out.dpop = proof
      } else out.authorization = `Bearer ${token}`
    }

    // Without a trusted proxy in front, a client-sent X-Forwarded-For is a
    // lie we must not pass on, and its Host names whatever it likes: the
    // origin we serve is the one configured. With one, Fastify has read
    // its X-Forwarded-* by its trust rules; append to its chain.
    if (trustProxy) {
      const prior = headers['x-forwarded-for']
      out['x-forwarded-for'] = prior ? `${prior}, ${request.socket.remoteAddress}` : request.ip
      out['x-forwarded-proto'] = request.protocol
      out['x-forwarded-host'] = request.host
    } else {
      out['x-forwarded-for'] = request.ip
      out['x-forwarded-proto'] = publicProto
      out['x-forwarded-host'] = publicHost
    }
    return out
  }
}
