import {
  context,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  SpanKind,
  TraceFlags,
  trace,
} from '@opentelemetry/api'
import { type IdGenerator, RandomIdGenerator, type Sampler, SamplingDecision } from '@opentelemetry/sdk-trace'
import type { onRequestHookHandler } from 'fastify'

/** The name @fastify/otel starts its server span with, before our request hook renames it. */
export const SERVER_SPAN = 'request'

/**
 * Decides whether a request's trace is sampled before any span exists, so
 * that a request whose trace is not sampled (nine in ten at 10 %) never
 * reaches the SDK's `startSpan`: no attributes cleaned, no ids drawn twice,
 * no server span the sampler then refuses, and none of @fastify/otel's
 * per-request work. In the benchmark that path was most of what tracing
 * cost an unsampled request.
 *
 * One decision, never two: the SDK is given the same sampler instance
 * (sampler.ts), and for a sampled request with no parent it is handed the
 * trace id the decision was made on (`idGenerator`), so it decides again
 * on the same input and comes to the same answer. Deciding on one id and
 * letting the SDK draw another would sample p² of the traces at ratio p,
 * and the ratio samplers' promise (the same trace id gets the same answer
 * in every service) would no longer hold.
 *
 * The decision reaches @fastify/otel through its `ignorePaths` callback,
 * which is given the URL and method only, not the request. So it is handed
 * over in a slot that lives only while the next hook runs: this hook is
 * registered immediately before @fastify/otel's (plugin.ts), and Fastify
 * calls a callback hook's successor synchronously inside `done`, so the
 * slot is set, read by that very request's `ignorePaths` call and cleared,
 * all in one synchronous call. A slot nothing read is cleared anyway.
 *
 * An unsampled request still runs in a context of its own: a span context
 * with the sampled flag off, as the SDK would have made, so that its log
 * lines carry the ids, Gatehouse's own spans see the flag and make nothing
 * (spans.ts), and its upstream and IdP calls carry the unsampled
 * `traceparent` (sdk.ts).
 */
export class SamplingFirst {
  readonly #sampler: Sampler
  readonly #ids = new RandomIdGenerator()
  #skipNext = false
  #traceIdNext: string | undefined

  constructor(sampler: Sampler) {
    this.#sampler = sampler
  }

  /** For the SDK's tracer provider: the one sampler both ask. */
  get sampler(): Sampler {
    return this.#sampler
  }

  /** For the SDK's tracer provider: a sampled request's trace id is the one decided on. */
  readonly idGenerator: IdGenerator = {
    generateTraceId: () => {
      const decided = this.#traceIdNext
      if (decided === undefined) return this.#ids.generateTraceId()
      this.#traceIdNext = undefined
      return decided
    },
    generateSpanId: () => this.#ids.generateSpanId(),
  }

  /** For @fastify/otel's `ignorePaths`: true once, for the request just decided unsampled. */
  readonly ignore = (): boolean => {
    const skip = this.#skipNext
    this.#skipNext = false
    return skip
  }

  /**
   * The `onRequest` hook that decides. With `trustIncoming`, a valid
   * incoming `traceparent` is the parent, as @fastify/otel would read it;
   * otherwise every request is a root and the decision is the sampler's
   * on a trace id drawn here.
   */
  hook(trustIncoming: boolean): onRequestHookHandler {
    return (request, _reply, done) => {
      const parent = trustIncoming ? propagation.extract(ROOT_CONTEXT, request.headers) : ROOT_CONTEXT
      const parentSpan = trace.getSpanContext(parent)
      const continued = parentSpan !== undefined && trace.isSpanContextValid(parentSpan)
      const traceId = continued ? parentSpan.traceId : this.#ids.generateTraceId()
      // The standard samplers look at the parent and the trace id only; the
      // span's attributes are not known yet and are not offered.
      const result = this.#sampler.shouldSample(parent, traceId, SERVER_SPAN, SpanKind.SERVER, {}, [])
      if (result.decision !== SamplingDecision.NOT_RECORD) {
        if (!continued) this.#traceIdNext = traceId
        try {
          done()
        } finally {
          this.#traceIdNext = undefined
        }
        return
      }
      const spanContext: SpanContext = {
        traceId,
        spanId: this.#ids.generateSpanId(),
        traceFlags: TraceFlags.NONE,
      }
      const traceState = result.traceState ?? parentSpan?.traceState
      if (traceState !== undefined) spanContext.traceState = traceState
      const unsampled = trace.setSpanContext(parent, spanContext)
      this.#skipNext = true
      try {
        context.with(unsampled, done)
      } finally {
        this.#skipNext = false
      }
    }
  }
}
