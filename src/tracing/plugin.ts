import type { FastifyInstance, onRequestHookHandler } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'

/**
 * Turns tracing on for one gateway when `tracing.enabled` says so, and
 * costs nothing otherwise: the SDK is imported here, on demand.
 *
 * Call it before any hook that may answer is added: the server span must
 * start first, so the guards that refuse a request early are inside it.
 */
export async function registerTracing(
  app: FastifyInstance,
  tracing: GatehouseConfig['tracing'],
): Promise<void> {
  if (!tracing.enabled) return
  const { startTracing } = await import('./sdk.js')
  const sdk = startTracing(app.log)
  app.addHook('onClose', () => sdk.shutdown())
  // W3C Trace Context §3.1 lets whoever sends `traceparent` choose the trace
  // id and the sampled flag. A browser is anyone: trusted, it could join
  // its requests to another user's trace, or mark every request sampled and
  // multiply what the exporter carries. So, unless the operator says a
  // proxy in front owns these headers, they are dropped before
  // @fastify/otel reads them, and every request starts a trace of its own.
  if (!tracing.trustIncoming) app.addHook('onRequest', dropTraceContext)
  // Immediately before the plugin: its hook reads the decision this one
  // makes, handed over while the next hook runs (decision.ts).
  app.addHook('onRequest', sdk.decide(tracing.trustIncoming))
  await app.register(sdk.plugin)
  // Either way they must not reach an upstream beside the ones the undici
  // instrumentation adds for our own span: two `traceparent` headers are
  // invalid, and the browser's would name a span the upstream never had.
  if (tracing.trustIncoming) app.addHook('onRequest', dropTraceContext)
}

const dropTraceContext: onRequestHookHandler = (request, _reply, done) => {
  const headers = request.headers
  if (headers.traceparent !== undefined) delete headers.traceparent
  if (headers.tracestate !== undefined) delete headers.tracestate
  done()
}
