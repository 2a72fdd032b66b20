import { type Attributes, type Span, SpanStatusCode } from '@opentelemetry/api'
import type { FastifyRequest } from 'fastify'

/**
 * The server span @fastify/otel starts for each sampled request, made what
 * the HTTP semantic conventions ask of one: its name, the attributes the
 * plugin leaves out or fills with the raw path, and its status. Loaded with
 * the SDK (sdk.ts), never with tracing off.
 */

const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
  'QUERY',
])

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
  errorOnlyFor5xx(span)
}

/**
 * The HTTP semantic conventions: a SERVER span's status MUST stay unset
 * for a 4xx, which is the client's mistake (no session, a stale sign-in
 * link), not the server's, and MUST be ERROR for a 5xx, whether thrown or
 * an upstream's own. @fastify/otel marks every error a hook throws,
 * whatever its status, and none it did not see; the SDK never lets an
 * ERROR be taken back. So on this span the status is decided when it ends,
 * once the response's status is known (@fastify/otel sets it just before
 * `end`): ERROR for a 5xx, or for a thrown error with no status at all.
 */
const ATTR_HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code'

function errorOnlyFor5xx(span: Span): void {
  const setStatus = span.setStatus.bind(span)
  const end = span.end.bind(span)
  let thrown = false
  span.setStatus = (status) => {
    if (status.code !== SpanStatusCode.ERROR) return setStatus(status)
    thrown = true
    return span
  }
  span.end = (endTime) => {
    const code = (span as unknown as { attributes?: Attributes }).attributes?.[ATTR_HTTP_RESPONSE_STATUS_CODE]
    if (typeof code === 'number' ? code >= 500 : thrown) {
      // No description: the conventions leave it unset where the status
      // code says it, and an error's message may quote a peer. error.type
      // names the failure, the status code where nothing finer is known.
      setStatus({ code: SpanStatusCode.ERROR })
      span.setAttribute('error.type', typeof code === 'number' ? String(code) : '_OTHER')
    }
    end(endTime)
  }
}
