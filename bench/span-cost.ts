/**
 * What the OpenTelemetry SDK itself costs per trace, without a gateway
 * around it: the floor under `bench/tracing.ts`'s figures. Each trace is
 * the shape a proxied request makes (a server span with @fastify/otel's
 * attributes, a session-read child, an upstream client span with the
 * undici instrumentation's attributes, the `traceparent` injected); an
 * unsampled one is the server span the sampler refuses, its context made
 * current and the unsampled `traceparent` injected. Spans go through the
 * SDK's `BatchSpanProcessor` to an exporter that encodes each batch with
 * the official OTLP serializers and drops it: no network, so the figures
 * are the SDK's work alone, in this process, on its own CPU clock.
 *
 *   npx tsx bench/span-cost.ts [--traces N]
 *
 * Prints one line per case: CPU µs per trace, and per exported span.
 */
import { parseArgs } from 'node:util'
import { type Context, context, propagation, SpanKind, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer'
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  type ReadableSpan,
  type SpanExporter,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace'

const { values: args } = parseArgs({ options: { traces: { type: 'string', default: '100000' } } })
const traces = Number(args.traces)

type Encoding = 'none' | 'json' | 'protobuf'

interface Case {
  readonly name: string
  readonly ratio: number
  readonly encoding: Encoding
}

const CASES: readonly Case[] = [
  { name: 'unsampled (sampler ratio 0)', ratio: 0, encoding: 'none' },
  { name: 'sampled, spans made and batched, not encoded', ratio: 1, encoding: 'none' },
  { name: 'sampled, encoded as OTLP/protobuf (the default)', ratio: 1, encoding: 'protobuf' },
  { name: 'sampled, encoded as OTLP/JSON', ratio: 1, encoding: 'json' },
  { name: '10 % sampled, OTLP/protobuf', ratio: 0.1, encoding: 'protobuf' },
]

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
propagation.setGlobalPropagator(new W3CTraceContextPropagator())

for (const c of CASES) console.log(await measure(c))

async function measure({ name, ratio, encoding }: Case): Promise<string> {
  let exported = 0
  const exporter: SpanExporter = {
    export(spans: ReadableSpan[], done) {
      exported += spans.length
      if (encoding === 'json') JsonTraceSerializer.serializeRequest(spans)
      else if (encoding === 'protobuf') ProtobufTraceSerializer.serializeRequest(spans)
      done({ code: 0 })
    },
    shutdown: async () => {},
  }
  const provider = new TracerProvider({
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) }),
    spanProcessors: [new BatchSpanProcessor({ exporter })],
  })
  const tracer = provider.getTracer('gatehouse')
  const one = (): void => {
    const parent = propagation.extract(context.active(), {})
    const span = tracer.startSpan(
      'request',
      {
        kind: SpanKind.SERVER,
        attributes: {
          'fastify.root': '@fastify/otel',
          'http.request.method': 'GET',
          'url.path': '/api/items',
          'http.route': '/api/*',
        },
      },
      parent,
    )
    if (span.isRecording()) span.updateName('GET /api/*')
    context.with(trace.setSpan(parent, span), () => child(tracer, context.active()))
    span.setAttribute('http.response.status_code', 200)
    span.end()
  }
  // Warm up, then measure in slices that let the processor export between
  // them, as the event loop does under load (its queue holds 2,048 spans).
  const slice = 200
  for (let i = 0; i < 20_000; i++) one()
  await provider.forceFlush()
  exported = 0
  const started = process.cpuUsage()
  for (let done = 0; done < traces; done += slice) {
    for (let i = 0; i < slice; i++) one()
    await new Promise((resolve) => setImmediate(resolve))
  }
  await provider.forceFlush()
  const used = process.cpuUsage(started)
  await provider.shutdown()
  const perTrace = (used.user + used.system) / traces
  const spans = exported / traces
  return `${name.padEnd(50)} ${perTrace.toFixed(1)} µs per trace, ${spans.toFixed(2)} spans exported per trace`
}

function child(tracer: ReturnType<TracerProvider['getTracer']>, active: Context): void {
  const carrier: Record<string, string> = {}
  if ((trace.getSpanContext(active)!.traceFlags & 1) === 0) {
    propagation.inject(active, carrier)
    return
  }
  tracer
    .startSpan(
      'gatehouse.session.read',
      { attributes: { 'gatehouse.session.cache': 'hit', 'gatehouse.session.found': true } },
      active,
    )
    .end()
  const client = tracer.startSpan(
    'GET',
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'http.request.method': 'GET',
        'url.full': 'http://127.0.0.1:4000/items',
        'url.path': '/items',
        'url.query': '',
        'url.scheme': 'http',
        'server.address': '127.0.0.1',
        'server.port': 4000,
        'user_agent.original': 'wrk',
      },
    },
    active,
  )
  propagation.inject(trace.setSpan(active, client), carrier)
  client.setAttributes({
    'network.peer.address': '127.0.0.1',
    'network.peer.port': 4000,
    'http.response.status_code': 200,
  })
  client.end()
}
