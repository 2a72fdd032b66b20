import { context, type ProxyTracerProvider, TraceFlags, type Tracer, trace } from '@opentelemetry/api'
import t, { type Test } from 'tap'
import { inSpan } from '../../src/tracing/spans.js'
import { apiCall, login } from '../helpers/login.js'
import { receiveSpans } from '../helpers/otlp-receiver.js'
import { startStack } from '../helpers/stack.js'

/**
 * What a request whose trace is not sampled costs: none of Gatehouse's own
 * spans and no client span for its upstream call, while the upstream still
 * learns the trace and that it was not sampled (W3C Trace Context), so it
 * follows the decision. Nine requests in ten at 10 % sampling are these.
 */
const receiver = await receiveSpans(t, { sampler: 'always_off' })

const inTrace = <T>(flags: TraceFlags, fn: () => T): T =>
  context.with(
    trace.setSpan(
      context.active(),
      trace.wrapSpanContext({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: flags }),
    ),
    fn,
  )

/**
 * Counts the SDK tracer's `startSpan` calls for @fastify/otel's server span
 * (named `request` until it is renamed by route), from now until the test ends.
 */
function serverSpansStarted(t: Test): { count: number } {
  const tracer = (trace.getTracerProvider() as ProxyTracerProvider).getDelegateTracer('probe') as Tracer
  const sdkTracer = Object.getPrototypeOf(tracer) as Tracer
  const original = sdkTracer.startSpan
  const counted = { count: 0 }
  sdkTracer.startSpan = function (this: Tracer, ...args: Parameters<Tracer['startSpan']>) {
    if (args[0] === 'request') counted.count++
    return original.apply(this, args)
  }
  t.teardown(() => {
    sdkTracer.startSpan = original
  })
  return counted
}

t.test(
  'an unsampled request makes no span of its own, and its upstream call carries the unsampled trace',
  async (t) => {
    const lines: Record<string, unknown>[] = []
    const stack = await startStack(t, {
      config: { tracing: { enabled: true }, accessLog: true, logLevel: 'info' },
      gateway: { logStream: { write: (line: string) => lines.push(JSON.parse(line)) } },
    })
    const { jar } = await login(stack.gateway.url)
    const started = serverSpansStarted(t)
    t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders`)).status, 200)
    t.equal(
      started.count,
      0,
      'the SDK was never asked to start a server span: the sampling was decided first',
    )
    const header = stack.upstream.requests.at(-1)?.headers.traceparent
    const line = lines.find((l) => l.msg === 'request' && l.path === '/api/orders')
    t.ok(line?.span_id, "the request's log line names its (unsampled) server span")
    t.equal(
      header,
      `00-${line?.trace_id}-${line?.span_id}-00`,
      'the upstream got the trace, flagged not sampled, with the server span as parent: no client span between',
    )

    // Gatehouse's own spans, with the SDK running: none under an unsampled parent.
    const unsampled = await inTrace(TraceFlags.NONE, () => inSpan('probe', {}, async (span) => span))
    t.equal(unsampled, undefined, 'no span object under an unsampled parent')
    const sampled = await inTrace(TraceFlags.SAMPLED, () => inSpan('probe', {}, async (span) => span))
    t.ok(sampled, 'a span under a sampled one')

    await stack.close() // flushes the exporter
    t.equal(receiver.spans.length, 0, 'nothing was exported')
  },
)
