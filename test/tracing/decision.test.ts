import {
  context,
  propagation,
  type Span,
  type SpanContext,
  SpanKind,
  TraceFlags,
  trace,
} from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import {
  AlwaysOffSampler,
  ParentBasedSampler,
  type Sampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace'
import type { FastifyReply, FastifyRequest } from 'fastify'
import t from 'tap'
import { SamplingFirst } from '../../src/tracing/decision.js'

/**
 * The decision is made once, before any span: the SDK (a real tracer
 * provider given the same sampler and id generator, as sdk.ts gives it)
 * then comes to the same answer on the same trace id, and a request
 * decided unsampled never reaches it.
 */
// What the SDK installs in the gateway (sdk.ts): a context manager, so the
// context an unsampled request runs in is active, and the W3C propagator.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
propagation.setGlobalPropagator(new W3CTraceContextPropagator())
t.teardown(() => {
  context.disable()
  propagation.disable()
})

interface Asked {
  readonly traceId: string
  readonly sampled: boolean
}

/** The configured sampler, with every question it was asked written down. */
function recorded(inner: Sampler): { sampler: Sampler; asked: Asked[] } {
  const asked: Asked[] = []
  return {
    asked,
    sampler: {
      shouldSample(...args) {
        const result = inner.shouldSample(...args)
        asked.push({ traceId: args[1], sampled: result.decision !== SamplingDecision.NOT_RECORD })
        return result
      },
      toString: () => `recorded(${inner})`,
    },
  }
}

/** What @fastify/otel's own hook does next: ask `ignorePaths`, else start the server span. */
function serverSpanHook(decision: SamplingFirst, provider: TracerProvider) {
  const seen: { ignored: boolean; span?: Span } = { ignored: false }
  const next = () => {
    seen.ignored = decision.ignore()
    if (!seen.ignored)
      seen.span = provider.getTracer('@fastify/otel').startSpan('request', { kind: SpanKind.SERVER })
  }
  return { seen, next }
}

function decide(
  decision: SamplingFirst,
  trustIncoming: boolean,
  headers: Record<string, string>,
  next: () => void,
) {
  const hook = decision.hook(trustIncoming)
  hook.call(undefined as never, { headers } as unknown as FastifyRequest, {} as FastifyReply, next)
}

t.test(
  'at ratio 0.5 the SDK samples exactly the requests decided sampled, on the same trace id',
  async (t) => {
    const { sampler, asked } = recorded(new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0.5) }))
    const decision = new SamplingFirst(sampler)
    const provider = new TracerProvider({ sampler: decision.sampler, idGenerator: decision.idGenerator })
    let sampled = 0
    let disagreements = 0
    for (let i = 0; i < 200; i++) {
      const before = asked.length
      const { seen, next } = serverSpanHook(decision, provider)
      decide(decision, false, {}, next)
      const first = asked[before]!
      if (!first.sampled) {
        if (!seen.ignored || seen.span !== undefined || asked.length !== before + 1) disagreements++
        continue
      }
      sampled++
      const span = seen.span!
      const again = asked[before + 1]
      if (
        seen.ignored ||
        span.spanContext().traceId !== first.traceId ||
        again?.traceId !== first.traceId ||
        (span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0
      ) {
        disagreements++
      }
    }
    t.equal(
      disagreements,
      0,
      'a sampled decision is the SDK’s, on the same id; an unsampled one never reaches it',
    )
    t.ok(sampled > 40 && sampled < 160, `about half sampled (${sampled} of 200)`)
    await provider.shutdown()
  },
)

t.test('an unsampled request runs in an unsampled context of its own', async (t) => {
  const decision = new SamplingFirst(new AlwaysOffSampler())
  let active: SpanContext | undefined
  let ignored: boolean | undefined
  decide(decision, false, {}, () => {
    ignored = decision.ignore()
    active = trace.getActiveSpan()?.spanContext()
  })
  t.equal(ignored, true, '@fastify/otel is told to ignore it')
  t.ok(active && trace.isSpanContextValid(active), 'with valid ids, for its log lines and traceparent')
  t.equal(active?.traceFlags, TraceFlags.NONE, 'flagged not sampled')
  t.equal(decision.ignore(), false, 'the decision is handed over once, not to the next request')
})

t.test('with trustIncoming, an incoming traceparent is the parent of the decision', async (t) => {
  const decision = new SamplingFirst(new ParentBasedSampler({ root: new AlwaysOffSampler() }))
  const provider = new TracerProvider({ sampler: decision.sampler, idGenerator: decision.idGenerator })
  const traceparent = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`

  const trusted = serverSpanHook(decision, provider)
  decide(decision, true, { traceparent }, trusted.next)
  t.equal(trusted.seen.ignored, false, 'a sampled parent makes the request sampled')

  const untrusted = serverSpanHook(decision, provider)
  decide(decision, false, { traceparent }, untrusted.next)
  t.equal(untrusted.seen.ignored, true, 'without trustIncoming the browser’s flag decides nothing')

  const unsampledParent = serverSpanHook(decision, provider)
  let active: SpanContext | undefined
  decide(
    decision,
    true,
    { traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-00`, tracestate: 'vendor=kept' },
    () => {
      unsampledParent.next()
      active = trace.getActiveSpan()?.spanContext()
    },
  )
  t.equal(unsampledParent.seen.ignored, true, 'an unsampled parent makes it unsampled')
  t.equal(active?.traceId, 'c'.repeat(32), 'in the parent’s trace')
  t.not(active?.spanId, 'd'.repeat(16), 'with a span id of its own')
  t.equal(active?.traceState?.get('vendor'), 'kept', 'and the tracestate it came with')
  await provider.shutdown()
})
