import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import {
  type Attributes,
  type Context,
  context,
  isSpanContextValid,
  propagation,
  type Span,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  trace,
} from '@opentelemetry/api'

/**
 * Gatehouse's own spans: the work no instrumentation can see (the session
 * read, the local cache, the refresh and the waits around it). The HTTP
 * server span comes from @fastify/otel and every outbound call's from
 * undici's diagnostics channels (see sdk.ts).
 *
 * With tracing off there is no tracer, and each helper is one comparison:
 * no span object, no context switch, no closure beyond the caller's own.
 * `@opentelemetry/api` alone is loaded then, not the SDK. With tracing on,
 * a request whose trace is not sampled costs each helper one look at the
 * active span's flags (`recording`).
 */
let tracer: Tracer | undefined

/** Attribute names of our own spans; semantic-convention names are used where one exists. */
export const ATTR = {
  /** The refresh's outcome, as in the `gatehouse_token_refreshes_total` metric. */
  refreshOutcome: 'gatehouse.refresh.outcome',
  /** The exchange's outcome, as in the `gatehouse_token_exchanges_total` metric. */
  exchangeOutcome: 'gatehouse.exchange.outcome',
  /**
   * The identity provider's configured name (`identityProviders[].name`,
   * `default` for the `oidc:` shorthand): whose IdP a slow or failed
   * redemption waited on, when a gateway has several. Bounded by the config.
   */
  idp: 'gatehouse.idp',
  /**
   * The frontend a request was for (`frontends[].name`), on its server span:
   * every frontend may serve the same route templates, and the span's name
   * alone would not tell whose request was slow. Bounded by the config.
   */
  frontend: 'gatehouse.frontend',
  /** The route audience's bounded label (`resource`), `''` for the login's own token. */
  resource: 'gatehouse.token.resource',
  /** How the caller waited: `flight` (joined this process's refresh) or `lock` (another instance's). */
  waitKind: 'gatehouse.refresh.wait',
  /** Milliseconds waited. */
  waitedMs: 'gatehouse.refresh.waited_ms',
  /** `hit` or `miss` in the per-instance session cache. */
  cacheResult: 'gatehouse.session.cache',
  /** Whether the cookie named a live session. */
  sessionFound: 'gatehouse.session.found',
  /**
   * The catalogue code (src/errors.ts, docs/errors.md) of the gateway's
   * own error answer, on its server span, 4xx included: the HTTP semantic
   * conventions recommend a domain-specific attribute for a domain's own
   * error identifiers, beside `error.type`. Bounded by the catalogue.
   */
  errorCode: 'gatehouse.error.code',
} as const

/** Called by the SDK's start and shutdown; nothing else turns spans on or off. */
export function useTracer(next: Tracer | undefined): void {
  tracer = next
}

/** True while spans are recorded somewhere; callers skip work that only feeds spans. */
export function tracing(): boolean {
  return tracer !== undefined
}

/**
 * Whether a span started now would be recorded: tracing is on and the
 * active trace was sampled. The standard samplers decide a child as its
 * parent was decided (the parent-based ones by its flag, `traceidratio` by
 * the same trace id), so a child of an unsampled span would be dropped
 * anyway; with 10 % sampling, nine requests in ten make no span of ours:
 * no span object, no context switch, no attributes.
 */
export function recording(): boolean {
  if (tracer === undefined) return false
  const parent = trace.getSpanContext(context.active())
  return parent === undefined || (parent.traceFlags & TraceFlags.SAMPLED) !== 0
}

/**
 * Runs `fn` in a child span of the active one, ended when `fn` settles;
 * a rejection marks it an error with the error's name only (messages may
 * quote what a peer said). Off, it is `fn()`.
 */
export function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span | undefined) => Promise<T>,
): Promise<T> {
  if (tracer === undefined || !recording()) return fn(undefined)
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span)
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorName(err) })
      span.setAttribute('error.type', errorName(err))
      throw err
    } finally {
      span.end()
    }
  })
}

/** A span for something that already happened and took no measurable time, e.g. a cache lookup. */
export function mark(name: string, attributes: Attributes): void {
  if (tracer === undefined || !recording()) return
  tracer.startSpan(name, { attributes }, context.active()).end()
}

/**
 * The context of each traced request whose answer waits behind another on
 * its connection (HTTP/1.1 pipelining, RFC 9112 §9.3.2; a request that
 * comes while the gateway drains). Node writes that answer only once the
 * one ahead has finished, so its `finish` and `close`, and the access line
 * written on them, ran in the context of the request ahead: the line
 * carried that request's trace_id, another user's when a proxy in front
 * shares its connections. Only such requests are kept; a map filled only
 * for them costs the others nothing.
 */
const queued = new WeakMap<IncomingMessage, Context>()

/** Keeps the active context as `request`'s own when its `response` waits behind another's. */
export function keepContextIfQueued(request: IncomingMessage, response: ServerResponse): void {
  // Node gives a response the socket only once the one ahead has finished;
  // until then it has none (`_http_server.js` queues it in `outgoing`).
  if (response.socket === null) queued.set(request, context.active())
}

/**
 * `fn(a, b)`, in `request`'s own context when `keepContextIfQueued` kept
 * it, else in the active one. Off, `fn(a, b)`.
 */
export function inOwnContext<A, B>(request: IncomingMessage, fn: (a: A, b: B) => void, a: A, b: B): void {
  const kept = tracer === undefined ? undefined : queued.get(request)
  if (kept === undefined) fn(a, b)
  else context.with(kept, fn, undefined, a, b)
}

/** `trace_id` and `span_id` of the active span for a log line, or nothing. */
export function logFields(): { trace_id: string; span_id: string } | Record<string, never> {
  if (tracer === undefined) return {}
  const span = trace.getSpan(context.active())
  if (span === undefined) return {}
  const spanContext = span.spanContext()
  // No tracer provider (OTEL_TRACES_EXPORTER=none) makes spans of all-zero
  // ids, which W3C Trace Context calls invalid: better none than those.
  if (!isSpanContextValid(spanContext)) return {}
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId }
}

/** Gatehouse errors carry a stable code; anything else is named by its class. */
function errorName(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return typeof code === 'string' ? code : err.name
  }
  return 'Error'
}

/**
 * Runs `fn`, a wait on a refresh someone else is making, in a
 * `gatehouse.refresh.wait` span that records how long it waited.
 */
export function waited<T>(kind: 'flight' | 'lock', fn: () => Promise<T>): Promise<T> {
  if (tracer === undefined || !recording()) return fn()
  return inSpan('gatehouse.refresh.wait', { [ATTR.waitKind]: kind }, async (span) => {
    const started = performance.now()
    try {
      return await fn()
    } finally {
      span?.setAttribute(ATTR.waitedMs, Math.round((performance.now() - started) * 1000) / 1000)
    }
  })
}

type Callback = (...args: never[]) => unknown

/** The callbacks of an undici dispatch handler that `inRequestContext` wraps. */
interface DispatchCallbacks {
  onRequestStart?: Callback
  onRequestUpgrade?: Callback
  onResponseStart?: Callback
  onResponseData?: Callback
  onResponseEnd?: Callback
  onResponseError?: Callback
}

/**
 * A dispatch handler whose callbacks run in the context it was made in.
 * One object per request and no closure: binding each callback with
 * `context.bind` made a wrapper function and redefined its `length` four
 * times per request, some 2 µs of every traced request in the profiles.
 * `onRequestStart` only keeps the controller and `onResponseData` only
 * passes a chunk on: neither logs, refreshes nor starts a span, so they
 * go straight through, without a context switch per chunk of an answer.
 */
class InContext {
  readonly #handler: DispatchCallbacks
  readonly #context: Context

  constructor(handler: DispatchCallbacks, active: Context) {
    this.#handler = handler
    this.#context = active
  }

  onRequestStart(...args: never[]): unknown {
    return this.#handler.onRequestStart?.(...args)
  }

  onRequestUpgrade(...args: never[]): unknown {
    return this.#run(this.#handler.onRequestUpgrade, args)
  }

  onResponseStart(...args: never[]): unknown {
    return this.#run(this.#handler.onResponseStart, args)
  }

  onResponseData(...args: never[]): unknown {
    return this.#handler.onResponseData?.(...args)
  }

  onResponseEnd(...args: never[]): unknown {
    return this.#run(this.#handler.onResponseEnd, args)
  }

  onResponseError(...args: never[]): unknown {
    return this.#run(this.#handler.onResponseError, args)
  }

  #run(callback: Callback | undefined, args: never[]): unknown {
    return callback && context.with(this.#context, callback, this.#handler, ...args)
  }
}

/**
 * `handler` with each of its callbacks run in the context active now, the
 * request's. undici calls them from its pooled connection's own async
 * context, which is that of whichever request opened the connection: a
 * later request's answer, and all it does (the access log line, a token
 * refused and refreshed, the replay), would otherwise be told, logged and
 * propagated as that earlier request's trace, perhaps another user's.
 * Off, `handler` itself.
 */
export function inRequestContext<H extends DispatchCallbacks>(handler: H): H {
  if (tracer === undefined) return handler
  return new InContext(handler, context.active()) as unknown as H
}

/**
 * Puts the active trace's `traceparent` (and `tracestate`) on `headers`:
 * for calls no instrumentation sees, such as a WebSocket upgrade, which
 * the `ws` client sends without undici. Off, nothing.
 */
export function injectTraceContext(headers: Record<string, unknown>): void {
  if (tracer === undefined) return
  propagation.inject(context.active(), headers)
}

/**
 * Ends the active server span with `status`, for a request whose reply is
 * hijacked (a WebSocket upgrade answered 101 on its socket): @fastify/otel
 * ends its span when the reply is sent, which a hijacked reply never is.
 * Taken when the upgrade is handled, called once it is answered.
 */
export function serverSpanEnder(): ((status: number) => void) | undefined {
  if (tracer === undefined) return undefined
  const span = trace.getSpan(context.active())
  if (span === undefined || !span.isRecording()) return undefined
  return (status) => {
    span.setAttribute('http.response.status_code', status)
    span.end()
  }
}
