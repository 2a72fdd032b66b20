import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { gatehouseError } from '../errors.js'

/**
 * Characters of a path that no URL parser rewrites: RFC 3986 `pchar`
 * (unreserved, sub-delims, `:` `@`), `%` and `/`. Anything else (`\`, `"`,
 * `{`, non-ASCII...) a WHATWG URL parser on the way (@fastify/reply-from,
 * many upstream frameworks) would turn into other bytes than those checked.
 */
const PLAIN = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/
const PERCENT = /%([0-9A-Fa-f]{2})/g

/**
 * True when an upstream would read this request path as we do. Refused:
 * every dot-segment (`.` or `..`) however it is spelled: percent-encoded
 * once or more (`%2e`, `%252e`), joined by an encoded slash, or carrying a
 * path parameter (`..;`, `..;x`, `.%3b`), which Tomcat and Spring strip
 * before they resolve the dot-segment (RFC 3986 §3.3 leaves `;` to the
 * scheme), so `/api/..;/admin` walks out of the route there. Also refused:
 * a segment that begins or ends with `..`, as @fastify/reply-from refuses
 * those, and a path a URL parser would rewrite, so the bytes the upstream
 * receives are the ones checked here. A malformed escape never gets here:
 * Fastify's router refuses it, and `frameworkError` answers `invalid_path`.
 */
export function upstreamReadsPathAsWeDo(url: string): boolean {
  const query = url.indexOf('?')
  const path = query === -1 ? url : url.slice(0, query)
  if (!PLAIN.test(path) && !parsesUnchanged(path)) return false
  // A dot-segment starts right after a slash, or is hidden in an encoding.
  if (!path.includes('/.') && !path.includes('..') && !path.includes('%')) return true
  let decoded: string
  try {
    // A malformed escape is refused, as @fastify/http-proxy refuses it.
    decoded = decodeURIComponent(path)
  } catch {
    return false
  }
  // Decoded again while anything decodes, for upstreams that decode twice.
  for (
    let next = decoded.replace(PERCENT, hexChar);
    next !== decoded;
    next = decoded.replace(PERCENT, hexChar)
  )
    decoded = next
  for (const segment of decoded.replaceAll('\\', '/').split('/')) {
    const semi = segment.indexOf(';')
    const name = semi === -1 ? segment : segment.slice(0, semi)
    if (name === '.' || name === '..') return false
    // @fastify/reply-from refuses any path containing `/..` or `../`, so
    // no API behind a Node proxy relies on such segments (`..foo`, `foo..`).
    if (segment.startsWith('..') || segment.endsWith('..')) return false
  }
  return true
}

/** A target the root hook let through always parses; a throw here still means "refuse", never a 500. */
function parsesUnchanged(path: string): boolean {
  try {
    return new URL(path, 'http://gatehouse.invalid').pathname === path
  } catch {
    return false
  }
}

function hexChar(_match: string, hex: string): string {
  return String.fromCharCode(Number.parseInt(hex, 16))
}

/**
 * The first hook of every proxy route: a path the upstream could read
 * otherwise is refused before the guard reads a session or attaches a token.
 */
export function refuseAmbiguousPath(
  request: FastifyRequest,
  _reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  if (upstreamReadsPathAsWeDo(request.url)) done()
  else done(gatehouseError('GATEHOUSE_ERR_INVALID_PATH'))
}
