import { type Context, ROOT_CONTEXT, SpanKind, TraceFlags, trace } from '@opentelemetry/api'
import { SamplingDecision } from '@opentelemetry/sdk-trace'
import t from 'tap'
import { samplerFromEnv } from '../../src/tracing/sampler.js'

/**
 * The standard OTEL_TRACES_SAMPLER values build the sampler the SDK would
 * build, since the decision is now asked of it before the SDK sees the
 * request (decision.ts).
 */

// Trace ids whose ratio-sampler hash is low and high: sampled at ratio 0.5 and not.
const LOW = '00000000000000000000000000000001'
const HIGH = 'ffffffff00000000000000000000000f'
const unsampledParent = trace.setSpanContext(ROOT_CONTEXT, {
  traceId: 'a'.repeat(32),
  spanId: 'b'.repeat(16),
  traceFlags: TraceFlags.NONE,
})

function sampled(env: NodeJS.ProcessEnv, traceId: string, parent: Context = ROOT_CONTEXT): boolean {
  const result = samplerFromEnv(env).shouldSample(parent, traceId, 'request', SpanKind.SERVER, {}, [])
  return result.decision === SamplingDecision.RECORD_AND_SAMPLED
}

t.test('each standard sampler decides as the SDK documents it', async (t) => {
  t.equal(sampled({}, HIGH), true, 'unset: parentbased_always_on samples a root')
  t.equal(sampled({}, HIGH, unsampledParent), false, 'and follows an unsampled parent')
  t.equal(sampled({ OTEL_TRACES_SAMPLER: 'always_on' }, HIGH, unsampledParent), true, 'always_on')
  t.equal(sampled({ OTEL_TRACES_SAMPLER: 'always_off' }, LOW), false, 'always_off')
  t.equal(sampled({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }, LOW), false, 'parentbased_always_off')
  const ratio = { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }
  t.equal(sampled(ratio, LOW), true, 'traceidratio keeps a low trace id')
  t.equal(sampled(ratio, HIGH), false, 'and drops a high one')
  t.equal(sampled(ratio, LOW, unsampledParent), true, 'whatever the parent said')
  const parentRatio = { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }
  t.equal(sampled(parentRatio, LOW), true, 'parentbased_traceidratio: a root by its trace id')
  t.equal(sampled(parentRatio, LOW, unsampledParent), false, 'a child as its parent')
})

t.test('an unknown name or a ratio out of range falls back as the SDK does', async (t) => {
  t.equal(sampled({ OTEL_TRACES_SAMPLER: 'jaeger_remote' }, HIGH), true, 'unknown: parentbased_always_on')
  t.equal(sampled({ OTEL_TRACES_SAMPLER: 'jaeger_remote' }, HIGH, unsampledParent), false)
  for (const arg of ['1.5', '-0.1', 'half', '']) {
    t.equal(
      sampled({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: arg }, HIGH),
      true,
      `OTEL_TRACES_SAMPLER_ARG=${JSON.stringify(arg)}: ratio 1`,
    )
  }
})

t.test('sampler names are read whatever their case, as the OTel environment spec asks', async (t) => {
  const problems: string[] = []
  const sampler = samplerFromEnv({ OTEL_TRACES_SAMPLER: ' ALWAYS_OFF ' }, (p) => problems.push(p))
  const result = sampler.shouldSample(ROOT_CONTEXT, LOW, 'request', SpanKind.SERVER, {}, [])
  t.equal(result.decision, SamplingDecision.NOT_RECORD, 'ALWAYS_OFF is always_off, not the default')
  t.same(problems, [])
  t.equal(sampled({ OTEL_TRACES_SAMPLER: 'TraceIdRatio', OTEL_TRACES_SAMPLER_ARG: '0.5' }, HIGH), false)
})

t.test('a ratio sampler without its ratio says so, and samples every trace as the SDK does', async (t) => {
  const problems: string[] = []
  samplerFromEnv({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio' }, (p) => problems.push(p))
  t.match(problems, [/OTEL_TRACES_SAMPLER_ARG is not set.*using 1/])
})
