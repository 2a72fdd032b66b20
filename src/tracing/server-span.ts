import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  type Attributes,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api'
import type { FastifyRequest, onRequestHookHandler } from 'fastify'
import { answerCodeOf } from '../errors.js'
import { KNOWN_METHODS } from '../method-label.js'
import { SERVER_SPAN } from './decision.js'
import { ATTR, keepContextIfQueued } from './spans.js'

/**
 * The server span @fastify/otel starts for each sampled request, made what
 * the HTTP semantic conventions ask of one: its name, the attributes the
 * plugin leaves out or fills with the raw path, its status, and an end
 * when the plugin would give it none. Loaded with
 * the SDK (sdk.ts), never with tracing off.
 */

/**
 * Semantic conventions name a server span `{method} {http.route}`. The
 * route is the template (`/api/orders/*`), never the path, which holds
 * identifiers; @fastify/otel records the raw `request.url` in `url.path`,
 * query and all, so that attribute gets the template too.
 */
export function nameByRoute(span: Span, request: FastifyRequest): void {
  // An unsampled request's span records nothing: no name or attribute to make.
  if (!span.isRecording()) return
  const route = request.routeOptions.url
  // HTTP semantic conventions: a method outside their list MUST be recorded
  // as `_OTHER`, the original beside it, and names the span `HTTP`; Node's
  // parser takes some thirty methods, and a client would otherwise choose
  // among that many span names per route.
  let method = request.method
  if (!KNOWN_METHODS.has(method)) {
    span.setAttribute('http.request.method', '_OTHER')
    span.setAttribute('http.request.method_original', method)
    method = 'HTTP'
  }
  span.updateName(route === undefined ? method : `${method} ${route}`)
  span.setAttribute('url.path', route ?? '')
  // Required on a server span by the HTTP semantic conventions; @fastify/otel leaves it out.
  span.setAttribute('url.scheme', request.protocol)
  // The router matched the request's frontend already: its routes carry the name.
  const frontend = request.routeOptions.config?.frontend
  if (frontend !== undefined) span.setAttribute(ATTR.frontend, frontend)
  endsOnce(span, request.raw)
}

const ATTR_HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code'
const ATTR_ERROR_TYPE = 'error.type'

/**
 * The `error.type` of a request whose connection closed before its answer
 * was complete: the browser went away, or the gateway cut an upstream's
 * answer short. Named for what the server saw, which is all it knows.
 */
const CONNECTION_CLOSED = 'connection_closed'

/**
 * The status of this span is decided when it ends, and it ends once.
 *
 * The HTTP semantic conventions: a SERVER span's status MUST stay unset
 * for a 4xx, which is the client's mistake (no session, a stale sign-in
 * link), not the server's, and MUST be ERROR for a 5xx, whether thrown or
 * an upstream's own. @fastify/otel marks every error a hook throws,
 * whatever its status, and none it did not see; the SDK never lets an
 * ERROR be taken back. So the status waits for the response's status
 * (@fastify/otel sets it just before `end`): ERROR for a 5xx, for a thrown
 * error with no status at all, and for a request cut off before its answer
 * was complete (`error.type` set by `endWhenAbandoned`).
 *
 * What failed is said by `error.type`: the gateway's catalogue code when it
 * made the answer itself (`GATEHOUSE_ERR_STORE_UNAVAILABLE`, one of the
 * eleven 503s it gives), which the conventions allow as "a component-specific
 * error identifier", else the status code (an upstream's own 5xx). Every
 * answer from the catalogue, a 4xx too, names its code in
 * `gatehouse.error.code`, the domain-specific attribute the conventions
 * recommend beside `error.type`: a 403 then tells a missing anti-forgery
 * header from a cross-site request, with the status still unset.
 *
 * A span ended at the close may still be finalised by @fastify/otel: a
 * route that answers after the browser left runs its onSend hooks all the
 * same. The SDK would log each late call ("Cannot execute the operation on
 * ended Span", "You can only call end() on a span once"), so once the span
 * has ended they are dropped here.
 */
function endsOnce(span: Span, request: IncomingMessage): void {
  const setStatus = span.setStatus.bind(span)
  const setAttribute = span.setAttribute.bind(span)
  const end = span.end.bind(span)
  let thrown = false
  // The SDK's setAttributes calls setAttribute for each.
  span.setAttribute = (key, value) => (span.isRecording() ? setAttribute(key, value) : span)
  span.setStatus = (status) => {
    if (status.code === SpanStatusCode.ERROR) thrown = true
    else if (span.isRecording()) setStatus(status)
    return span
  }
  span.end = (endTime) => {
    if (!span.isRecording()) return
    const attributes = (span as unknown as { attributes?: Attributes }).attributes
    const code = attributes?.[ATTR_HTTP_RESPONSE_STATUS_CODE]
    const cutOff = attributes?.[ATTR_ERROR_TYPE] !== undefined
    const answer = answerCodeOf(request)
    if (answer !== undefined) setAttribute(ATTR.errorCode, answer)
    if (cutOff || (typeof code === 'number' ? code >= 500 : thrown)) {
      // No description: the conventions leave it unset where the status
      // code says it, and an error's message may quote a peer.
      setStatus({ code: SpanStatusCode.ERROR })
      if (!cutOff)
        setAttribute(ATTR_ERROR_TYPE, answer ?? (typeof code === 'number' ? String(code) : '_OTHER'))
    }
    end(endTime)
  }
}

/**
 * The server span of each sampled response still open. Kept beside the
 * response rather than on it: a property only sampled responses carried
 * would give Node's and Fastify's code two shapes of response to handle
 * on every request.
 */
const serverSpans = new WeakMap<ServerResponse, Span>()

/**
 * The `onRequest` hook, added immediately after @fastify/otel's, that ends
 * the server span of a request whose connection closes before its answer
 * is complete. @fastify/otel ends its span in onSend or onResponse only;
 * onResponse waits for the response's `finish`, which such a request never
 * reaches, and a proxied answer is written past onSend. Left open, the
 * span was never exported, and the upstream call under it was, naming a
 * parent no collector ever received.
 *
 * Not Fastify's `onRequestAbort`: it runs only when Node marks the request
 * `aborted`, which it does only while the request's body is unread, so a
 * POST whose body had gone upstream in full and was then abandoned never
 * ran it. Every response emits `close`, answered or not.
 *
 * HTTP semantic conventions: a request cancelled, or not answered in full,
 * is an error with its `error.type`; `http.response.status_code` is
 * recorded if and only if one was sent. One listener function for every
 * request, which finds the span on the response: no closure per request.
 * It also keeps the request's context when its answer must wait behind
 * another's on the connection (`keepContextIfQueued`).
 */
export const endWhenAbandoned: onRequestHookHandler = (request, reply, done) => {
  // @fastify/otel runs the next hook in the context of the span it started
  // (of the unsampled trace, for a request it skips): the request's own.
  keepContextIfQueued(request.raw, reply.raw)
  const span = trace.getSpan(context.active())
  // An unsampled request's span records nothing, and is never ended.
  if (span?.isRecording()) {
    serverSpans.set(reply.raw, span)
    reply.raw.on('close', closedUnanswered)
  }
  done()
}

function closedUnanswered(this: ServerResponse): void {
  const span = serverSpans.get(this)
  // Answered in full: onResponse, run on `finish`, ends it. A WebSocket
  // upgrade's ended at its 101 (spans.ts).
  if (span === undefined || this.writableFinished || !span.isRecording()) return
  if (this.headersSent) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, this.statusCode)
  span.setAttribute(ATTR_ERROR_TYPE, CONNECTION_CLOSED)
  span.end()
}

/** The server span of an answer made before routing, and the context its lines are written in. */
export interface UnroutedSpan {
  /** Runs `fn` in the span's context: its log lines carry its trace and span ids. */
  run<T>(fn: () => T): T
  /** Ends the span: with the status sent, or, `undefined`, as cut off before the answer was complete. */
  end(status: number | undefined): void
}

/**
 * Starts the server span of a request the router answers before any hook
 * runs (a target that does not percent-decode, `frameworkErrors`).
 * @fastify/otel starts its span in an onRequest hook, which such a request
 * never reaches: it had no span at all. This one is what `nameByRoute`
 * makes of any request without a route: named by its method alone, its
 * `url.path` empty, never the target the client sent; its status and
 * `gatehouse.error.code` are decided when it ends, as for every server span.
 * The incoming `traceparent` is its parent only with `trustIncoming`; the
 * SDK's sampler decides, so an unsampled one records nothing, but its ids
 * still mark the request's log lines.
 */
export function startUnroutedSpan(
  tracer: Tracer,
  trustIncoming: boolean,
  request: FastifyRequest,
): UnroutedSpan {
  const parent = trustIncoming ? propagation.extract(ROOT_CONTEXT, request.headers) : ROOT_CONTEXT
  const span = tracer.startSpan(
    SERVER_SPAN,
    { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method } },
    parent,
  )
  nameByRoute(span, request)
  const active = trace.setSpan(parent, span)
  return {
    run: (fn) => context.with(active, fn),
    end(status) {
      if (!span.isRecording()) return
      if (status === undefined) span.setAttribute(ATTR_ERROR_TYPE, CONNECTION_CLOSED)
      else span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status)
      span.end()
    },
  }
}
