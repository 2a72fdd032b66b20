import type { FastifyBaseLogger } from 'fastify'
import { type ErrorCode, gatehouseError, loggedAlready } from '../errors.js'
import { type RepeatedLines, repeatedField } from '../repeated-lines.js'
import { closedUnansweredHint, tlsFailureReason } from '../tls/handshake-errors.js'

/** undici error codes that mean the upstream was too slow, not absent. */
const timeoutCodes = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

/** The body limiter's abort (src/proxy/body-limit.ts): the client's fault, surfacing as the dispatch's error. */
const TOO_LARGE: ErrorCode = 'GATEHOUSE_ERR_PAYLOAD_TOO_LARGE'

export type UpstreamErrorKind = 'timeout' | 'unreachable' | 'tls' | 'invalid'

/** Counts upstream failures by route and kind, for metrics. */
export type UpstreamErrorObserver = (route: string, kind: UpstreamErrorKind) => void

/** What a failed dispatch answers through. */
interface FailedReply {
  readonly log: FastifyBaseLogger
  send(payload: unknown): unknown
}

/**
 * Answers a proxied call whose upstream failed before any of its answer was
 * sent, in the error catalogue's terms: a timeout (connect, headers or body,
 * each bounded by the route's `timeout`) is `504 upstream_timeout`, a
 * failed TLS handshake `502 upstream_tls_failed` with the reason logged, an
 * answer that is not valid HTTP `502 upstream_invalid_response`, any other
 * failure `502 upstream_unreachable`. A body over the route's limit
 * aborts the dispatch too, and is the client's `413`. Its line is
 * written once a minute per cause on the route's `lines`.
 */
export function answerUpstreamFailure(
  reply: FailedReply,
  error: Error & { code?: string; socket?: { bytesRead?: number } },
  route: string,
  lines: RepeatedLines,
  observe?: UpstreamErrorObserver,
): void {
  if (error.code === TOO_LARGE) {
    reply.send(gatehouseError('GATEHOUSE_ERR_PAYLOAD_TOO_LARGE'))
    return
  }
  const tls = tlsFailureReason(error)
  const kind: UpstreamErrorKind = timeoutCodes.has(error.code ?? '')
    ? 'timeout'
    : tls
      ? 'tls'
      : notHttp(error)
        ? 'invalid'
        : 'unreachable'
  const hint = kind === 'unreachable' ? closedUnansweredHint(error) : undefined
  observe?.(route, kind)
  const upstreamError = error.code ?? error.name
  const held = lines.admit(`${kind} ${upstreamError}`)
  if (held !== undefined)
    reply.log.warn(
      {
        route,
        upstreamError,
        ...(tls ? { tls } : {}),
        ...(hint ? { hint } : {}),
        ...repeatedField(held),
      },
      'upstream request failed',
    )
  reply.send(loggedAlready(gatehouseError(upstreamErrorCode(kind))))
}

/**
 * An answer undici refused to read as HTTP/1.1: its parser's errors (a bad
 * status line, a header with a NUL, Content-Length beside chunked), a head
 * past its size limit, or a body that did not match its Content-Length (which reaches this answer
 * only if found before the answer started; after, the browser's connection
 * is cut). The upstream was reached; it answered something that must not
 * be passed on (response smuggling). Also what undici refuses as a
 * `SocketError` with no code of its own (`REFUSED_ANSWERS`), and what the
 * gateway refuses itself (`refusedAnswer`).
 * node:http's parser, which reads a WebSocket handshake's answer for `ws`,
 * reports the same llhttp `HPE_*` codes.
 */
export function notHttp(error: Error & { code?: string }): boolean {
  return (
    error.name === 'HTTPParserError' ||
    error.code?.startsWith('HPE_') === true ||
    error.code === 'UND_ERR_HEADERS_OVERFLOW' ||
    error.code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' ||
    error.code === ANSWER_REFUSED ||
    (error.code === 'UND_ERR_SOCKET' && REFUSED_ANSWERS.has(error.message))
  )
}

/** The code of an answer undici read but the gateway refuses to pass on (`refusedAnswer`). */
const ANSWER_REFUSED = 'UPSTREAM_ANSWER_REFUSED'

/**
 * The error that aborts an answer undici read whole but the gateway cannot
 * pass on as it came (two `Location` fields, a status Fastify cannot send):
 * like an answer undici's parser refuses, `502 upstream_invalid_response`.
 */
export function refusedAnswer(why: string): Error & { code: string } {
  return Object.assign(new Error(why), { code: ANSWER_REFUSED })
}

/**
 * undici's messages for an answer it read and refused: a `100 Continue`
 * it never asked for (it sends no `Expect`), and a `101` to a request that
 * asked for no upgrade (client-h1.js). Named only by message; the test
 * (upstream-100-or-101-is-an-invalid-response) pins them to the undici in use.
 */
const REFUSED_ANSWERS: ReadonlySet<string> = new Set(['bad response', 'bad upgrade'])

/** The catalogue's code for an upstream that failed this way, over HTTP or a WebSocket handshake. */
export function upstreamErrorCode(kind: UpstreamErrorKind): ErrorCode {
  if (kind === 'tls') return 'GATEHOUSE_ERR_UPSTREAM_TLS'
  if (kind === 'invalid') return 'GATEHOUSE_ERR_UPSTREAM_INVALID_RESPONSE'
  return kind === 'timeout' ? 'GATEHOUSE_ERR_UPSTREAM_TIMEOUT' : 'GATEHOUSE_ERR_UPSTREAM_UNREACHABLE'
}
