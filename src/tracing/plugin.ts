import type { FastifyBaseLogger, FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import type { UnroutedSpan } from './server-span.js'

/** Starts the server span of a request the router answers before any hook runs; see `startUnroutedSpan`. */
export type UnroutedTracer = (request: FastifyRequest) => UnroutedSpan

/**
 * Turns tracing on for one gateway when `tracing.enabled` says so, and
 * costs nothing otherwise: the SDK is imported here, on demand.
 *
 * Call it before any hook that may answer is added: the server span must
 * start first, so the guards that refuse a request early are inside it.
 * Returns what traces the answers made before any hook, when tracing is on.
 */
export async function registerTracing(
  app: FastifyInstance,
  tracing: GatehouseConfig['tracing'],
): Promise<UnroutedTracer | undefined> {
  if (!tracing.enabled) return undefined
  const { startTracing } = await import('./sdk.js')
  const sdk = startTracing(app.log)
  app.addHook('onClose', () => flushAtClose(sdk.shutdown(), app.log))
  // W3C Trace Context §3.1 lets whoever sends `traceparent` choose the trace
  // id and the sampled flag. A browser is anyone: trusted, it could join
  // its requests to another user's trace, or mark every request sampled and
  // multiply what the exporter carries. So, unless the operator says a
  // proxy in front owns these headers, they are dropped before
  // @fastify/otel reads them, and every request starts a trace of its own.
  // Trusted or not, the browser's never reach an upstream: the proxy's
  // header rewrite drops them, tracing on or off (header-rules.ts), and the
  // gateway's own are added after it.
  if (!tracing.trustIncoming) app.addHook('onRequest', dropTraceContext)
  // Immediately before the plugin: its hook reads the decision this one
  // makes, handed over while the next hook runs (decision.ts).
  app.addHook('onRequest', sdk.decide(tracing.trustIncoming))
  await app.register(sdk.plugin)
  // Immediately after the plugin: its hook runs this one in the context of
  // the span it started (server-span.ts).
  app.addHook('onRequest', sdk.endWhenAbandoned)
  return sdk.unrouted(tracing.trustIncoming)
}

/**
 * How long the spans still buffered at shutdown may take to export. The
 * exporter's own timeout (OTEL_EXPORTER_OTLP_TIMEOUT, 10 s) and its
 * retries would spend the drain's whole budget on a collector that is
 * down; the requests the drain waits for matter more than their spans.
 */
const FLUSH_LIMIT_MS = 3_000

/**
 * The SDK's shutdown, bounded, and never a failure of the gateway's close:
 * spans that cannot be exported are lost and logged, and the process
 * still exits 0 once its requests are answered.
 */
async function flushAtClose(shutdown: Promise<void>, log: FastifyBaseLogger): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(resolve, FLUSH_LIMIT_MS, 'late')
  })
  try {
    if ((await Promise.race([shutdown, late])) === 'late') {
      log.warn(
        { waitedMs: FLUSH_LIMIT_MS },
        'tracing: spans still buffered at shutdown were not exported in time',
      )
    }
  } catch (err) {
    // The collector's answer is a peer's text: its name and code say enough.
    const { name, code } = err as { name?: unknown; code?: unknown }
    log.warn({ err: { name, code } }, 'tracing: spans still buffered at shutdown were not exported')
  } finally {
    clearTimeout(timer)
  }
}

const dropTraceContext: onRequestHookHandler = (request, _reply, done) => {
  const headers = request.headers
  if (headers.traceparent !== undefined) delete headers.traceparent
  if (headers.tracestate !== undefined) delete headers.tracestate
  done()
}
