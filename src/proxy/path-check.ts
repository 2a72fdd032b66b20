import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { gatehouseError } from '../errors.js'
import { DECODES, decodeEscapes, upstreamReading } from '../path-reading.js'

/**
 * Characters of a path that no URL parser rewrites: RFC 3986 `pchar`
 * (unreserved, sub-delims, `:` `@`), `%` and `/`. Anything else (`\`, `"`,
 * `{`, non-ASCII...) a WHATWG URL parser on the way (@fastify/reply-from,
 * many upstream frameworks) would turn into other bytes than those checked.
 */
const PLAIN = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/
const ESCAPE = /%[0-9A-Fa-f]{2}/
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL = /[\x00-\x1f\x7f]/

/**
 * True when an upstream would read this request path as we do. Refused:
 * every dot-segment (`.` or `..`) however it is spelled: percent-encoded
 * up to four times (`%2e`, `%252e`), joined by an encoded slash, or carrying a
 * path parameter (`..;`, `..;x`, `.%3b`), which Tomcat and Spring strip
 * before they resolve the dot-segment (RFC 3986 §3.3 leaves `;` to the
 * scheme), so `/api/..;/admin` walks out of the route there. Also refused:
 * a segment that begins or ends with `..`, as @fastify/reply-from refuses
 * those, and a path a URL parser would rewrite, so the bytes the upstream
 * receives are the ones checked here, and an escaped control character
 * (`%00`, `%0d%0a`, `%2500`): Node refuses the bytes themselves, but an
 * upstream in C or one that opens a file ends the path at a decoded NUL
 * (`/api/admin%00/x` is `/api/admin` there), and one that writes the path
 * into a header or a log line writes a CR LF. A malformed escape never gets here:
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
  // Decoded again, for upstreams that decode twice or behind a proxy that
  // decodes; a path that is still encoded after that is no one's.
  decoded = decodeEscapes(decoded, DECODES - 1)
  if (ESCAPE.test(decoded) || CONTROL.test(decoded)) return false
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

/**
 * The first hook of a proxy route that no other route lies under: a path the
 * upstream could read otherwise is refused before the guard reads a session
 * or attaches a token.
 */
export function refuseAmbiguousPath(
  request: FastifyRequest,
  _reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  if (upstreamReadsPathAsWeDo(request.url)) done()
  else done(gatehouseError('GATEHOUSE_ERR_INVALID_PATH'))
}

/**
 * What may make an upstream read a path as another one than the router did:
 * an escape (`%2F`, `%5C`, `%3B`, `%252F`, ...), `\`, `;`, a `//` run, a
 * segment ending in `.`, or a capital letter. A path with none of them is
 * read alike by every upstream, and costs one scan.
 */
const READ_OTHERWISE = /[%\\;A-Z]|\/\/|\.(?:\/|$)/

/**
 * The paths of the routes that lie under `path`, as `upstreamReading` reads
 * them: the router gives a request to the route with the longest prefix it
 * matches as written, so a spelling of a deeper route's path that the router
 * does not read as that route's lands on this one.
 */
export function routesUnder(path: string, all: readonly string[]): readonly string[] {
  const own = upstreamReading(path)
  const under = own === '/' ? '/' : `${own}/`
  return all.map(upstreamReading).filter((other) => other !== own && other.startsWith(under))
}

/**
 * The first hook of a proxy route: `refuseAmbiguousPath`, and for a route
 * that other routes lie under (`/api` with `/api/admin`, a catch-all `/`),
 * the refusal of a path that an upstream reads as one of theirs
 * (`/api/admin%2Fx`, `/api//admin`, `/API/admin`): sent on, it would reach
 * that route's path with this route's token, upstream, methods and
 * anti-forgery rules. The router does not decode `%2F` (a data slash, as in
 * GitLab's `group%2Fproject`), which passes wherever no deeper route reads it.
 */
export function ambiguousPathRefusal(path: string, all: readonly string[]) {
  const deeper = routesUnder(path, all)
  if (deeper.length === 0) return refuseAmbiguousPath
  return function refuseAmbiguousRoute(
    request: FastifyRequest,
    _reply: FastifyReply,
    done: HookHandlerDoneFunction,
  ): void {
    const url = request.url
    if (!upstreamReadsPathAsWeDo(url)) {
      done(gatehouseError('GATEHOUSE_ERR_INVALID_PATH'))
      return
    }
    const query = url.indexOf('?')
    const target = query === -1 ? url : url.slice(0, query)
    if (!READ_OTHERWISE.test(target) || !readsAsOneOf(upstreamReading(target), deeper)) {
      done()
      return
    }
    done(
      gatehouseError(
        'GATEHOUSE_ERR_INVALID_PATH',
        "The path is another route's to an upstream that decodes %2F, merges // or drops ;parameters, trailing dots or case; send that route's path as written.",
      ),
    )
  }
}

function readsAsOneOf(reading: string, deeper: readonly string[]): boolean {
  for (const prefix of deeper) {
    if (reading.startsWith(prefix) && (reading.length === prefix.length || reading[prefix.length] === '/'))
      return true
  }
  return false
}
