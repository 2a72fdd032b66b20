import type { FastifyBaseLogger } from 'fastify'
import { type ErrorCode, gatehouseError, loggedAlready } from '../errors.js'
import { type RepeatedLines, repeatedField } from '../repeated-lines.js'
import { closedUnansweredHint, tlsFailureReason } from '../tls/handshake-errors.js'

/** undici error codes that mean the upstream was too slow, not absent. */
const timeoutCodes = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

/** The body limiter's abort (src/proxy/body-limit.ts): the client's fault, surfacing as the dispatch's error. */
const TOO_LARGE: ErrorCode = 'GATEHOUSE_ERR_PAYLOAD_TOO_LARGE'

export type UpstreamErrorKind = 'timeout' | 'unreachable' | 'tls' | 'invalid' | 'headers_too_large'

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
  if (error.code === HEADERS_REFUSED) {
    answerHeadersRefused(reply, error as HeadersRefused, route, lines, observe)
    return
  }
  if (error.code === NONCE_UNANSWERED) {
    answerNonceUnanswered(reply, error, route, lines)
    return
  }
  if (error.code === PROOF_REFUSED) {
    answerProofRefused(reply, error as ProofRefused, route, lines)
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
  if (kind === 'headers_too_large') return 'GATEHOUSE_ERR_UPSTREAM_HEADERS_TOO_LARGE'
  if (kind === 'invalid') return 'GATEHOUSE_ERR_UPSTREAM_INVALID_RESPONSE'
  return kind === 'timeout' ? 'GATEHOUSE_ERR_UPSTREAM_TIMEOUT' : 'GATEHOUSE_ERR_UPSTREAM_UNREACHABLE'
}

/** The code of an upstream's 431 to headers that carried the gateway's token (`headersRefused`). */
const HEADERS_REFUSED = 'UPSTREAM_HEADERS_REFUSED'

/** The abort of an upstream's 431: the sizes of what the gateway sent, never any of it. */
interface HeadersRefused extends Error {
  readonly code: typeof HEADERS_REFUSED
  /** Bytes of the Authorization header's value the gateway set: the scheme and the token. */
  readonly authorizationBytes: number
  /** Bytes of the header lines the gateway set, as `name: value\r\n` (undici adds Host and the request line). */
  readonly headerBytes: number
}

/**
 * The error that aborts an upstream's 431 (Request Header Fields Too Large,
 * RFC 6585 §5) to a request the gateway added a token to. The upstream
 * refused a head the gateway made, its token often the largest part: passed
 * on, the 431 told the browser its own headers were too large, which it
 * can do nothing about, and said nothing to the operator. Its sizes are
 * measured here, from `sent`, the headers the request went out with.
 */
export function headersRefused(
  sent: Readonly<Record<string, string | string[] | undefined>>,
): HeadersRefused {
  let headerBytes = 0
  for (const name in sent) {
    const value = sent[name]
    for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value])
      headerBytes += name.length + 4 + Buffer.byteLength(one)
  }
  const authorization = sent.authorization
  return Object.assign(new Error("the upstream answered 431 to headers that carry the gateway's token"), {
    code: HEADERS_REFUSED,
    authorizationBytes: typeof authorization === 'string' ? Buffer.byteLength(authorization) : 0,
    headerBytes,
  } as const)
}

/**
 * `502 upstream_headers_too_large` for an upstream's 431 to the gateway's
 * token, with a warning naming the route and the sizes sent, once a minute
 * per route: every request with the token meets it until the token is
 * replaced, and the SPA's retries with it.
 */
function answerHeadersRefused(
  reply: FailedReply,
  error: HeadersRefused,
  route: string,
  lines: RepeatedLines,
  observe?: UpstreamErrorObserver,
): void {
  observe?.(route, 'headers_too_large')
  const code: ErrorCode = 'GATEHOUSE_ERR_UPSTREAM_HEADERS_TOO_LARGE'
  const held = lines.admit(code)
  if (held !== undefined)
    reply.log.warn(
      {
        code,
        route,
        status: 431,
        authorizationBytes: error.authorizationBytes,
        headerBytes: error.headerBytes,
        ...repeatedField(held),
      },
      `the upstream refused the request headers as too large (431): they carried the gateway's Authorization header of ${error.authorizationBytes} bytes, in ${error.headerBytes} bytes of headers. Raise the upstream's limit (nginx large_client_header_buffers, Node.js --max-http-header-size, Envoy max_request_headers_kb), or have the identity provider issue smaller tokens; tokens.maxSize refuses larger ones when they are issued`,
    )
  reply.send(loggedAlready(gatehouseError(code)))
}

/** The code of an upstream's `use_dpop_nonce` the gateway does not replay (`nonceUnanswered`). */
const NONCE_UNANSWERED = 'UPSTREAM_DPOP_NONCE_UNANSWERED'

/**
 * The error that aborts an upstream's 401 `use_dpop_nonce` (RFC 9449 §9)
 * to a request with the gateway's proof that is not replayed: its body
 * could not be held (`why` says so), or the replay with the nonce was
 * challenged again. The challenge is the DPoP client's to answer, and the
 * browser holds no key: passed on as a 401 it read as "sign in again"
 * (the README's SPA wrapper), which mends nothing.
 */
export function nonceUnanswered(why: string): Error & { code: string } {
  return Object.assign(new Error(why), { code: NONCE_UNANSWERED })
}

/**
 * `503 upstream_dpop_nonce`, with a warning naming the route and why the
 * challenge was not replayed, once a minute per route and reason: the
 * nonce is remembered, so the request sent again carries it.
 */
function answerNonceUnanswered(reply: FailedReply, error: Error, route: string, lines: RepeatedLines): void {
  const code: ErrorCode = 'GATEHOUSE_ERR_UPSTREAM_DPOP_NONCE'
  const held = lines.admit(`${code} ${error.message}`)
  if (held !== undefined)
    reply.log.warn(
      { code, route, reason: error.message, ...repeatedField(held) },
      'the upstream asked for a DPoP nonce (use_dpop_nonce) and the request was not sent again with it',
    )
  reply.send(loggedAlready(gatehouseError(code)))
}

/** The code of an upstream's 401 `invalid_dpop_proof` to the gateway's proof (`dpopProofRefused`). */
const PROOF_REFUSED = 'UPSTREAM_DPOP_PROOF_REFUSED'

interface ProofRefused extends Error {
  readonly code: typeof PROOF_REFUSED
  /** The proof's `htm` and `htu` (RFC 9449 §4.2): the method, and the URL as sent without its query. */
  readonly htm: string
  readonly htu: string
}

/**
 * The error that aborts an upstream's 401 `DPoP error="invalid_dpop_proof"`
 * (RFC 9449 §7.1) to a request with the gateway's proof. The proof is the
 * gateway's, not the browser's: passed on, the 401 sent the user to sign
 * in (the README's SPA wrapper), and with single sign-on at the IdP back to
 * the same refusal, a loop that told the operator nothing.
 */
export function dpopProofRefused(htm: string, htu: string): ProofRefused {
  return Object.assign(new Error("the upstream refused the gateway's DPoP proof"), {
    code: PROOF_REFUSED,
    htm,
    htu,
  } as const)
}

/**
 * `502 upstream_dpop_proof_refused`, with a warning naming the route and
 * what the proof named, once a minute per route: every request meets it
 * until an operator mends it. The upstream's `error_description` is not
 * logged: a server may echo the token it refused.
 */
function answerProofRefused(
  reply: FailedReply,
  error: ProofRefused,
  route: string,
  lines: RepeatedLines,
): void {
  const code: ErrorCode = 'GATEHOUSE_ERR_UPSTREAM_DPOP_PROOF_REFUSED'
  const held = lines.admit(code)
  if (held !== undefined)
    reply.log.warn(
      { code, route, htm: error.htm, htu: error.htu, ...repeatedField(held) },
      "the upstream refused the gateway's DPoP proof (invalid_dpop_proof): check that it reads the request's URL as the proof's htu names it (scheme and host as the gateway dials them, behind a TLS terminator too), that its clock and this host's agree, and that it accepts oidc.dpopAlgorithm",
    )
  reply.send(loggedAlready(gatehouseError(code)))
}
