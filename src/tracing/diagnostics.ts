import { context, type DiagLogger, DiagLogLevel, diag, ROOT_CONTEXT } from '@opentelemetry/api'
import { loggingErrorHandler, setGlobalErrorHandler } from '@opentelemetry/core'
import type { FastifyBaseLogger } from 'fastify'

/** What the OpenTelemetry API's own diagnostics say, in Gatehouse's log. */
const PREFIX = 'OpenTelemetry: '

/**
 * Sends OpenTelemetry's diagnostics (a sampler setting it replaced, an
 * export the collector refused) to the gateway's log, at warn and above.
 * The SDK installs a logger of its own only when `OTEL_LOG_LEVEL` is set,
 * and only inside its constructor: without this, what the SDK and
 * sampler.ts report before or without it goes nowhere, and a wrong
 * `OTEL_TRACES_SAMPLER` would change the sampling in silence. With
 * `OTEL_LOG_LEVEL` set, the operator has asked for the SDK's own console
 * logger at that level, and gets it.
 *
 * Returns how to take the logger back, for the last gateway to stop.
 */
export function reportDiagnostics(log: FastifyBaseLogger, env: NodeJS.ProcessEnv): () => void {
  if (env.OTEL_LOG_LEVEL !== undefined) return () => {}
  const logger: DiagLogger = {
    error: (message, ...args) => log.error(fields(args), PREFIX + message),
    warn: (message, ...args) => log.warn(fields(args), PREFIX + message),
    info: () => {},
    debug: () => {},
    verbose: () => {},
  }
  diag.setLogger(logger, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true })
  // The SDK's default handler of a failed export writes the whole error,
  // flattened to JSON, into the message: a collector's answer body with
  // it, which may quote the OTLP headers' credentials back. Outside any
  // request's context, so the line carries no unrelated trace ids.
  setGlobalErrorHandler((ex) =>
    context.with(ROOT_CONTEXT, () =>
      log.error({ err: summary(ex) }, `${PREFIX}an export or its processing failed`),
    ),
  )
  return () => {
    diag.disable()
    setGlobalErrorHandler(loggingErrorHandler())
  }
}

/** An error among the arguments, summarised; the rest is left out, as it may quote a peer. */
function fields(args: unknown[]): { err?: ErrorSummary } {
  const err = args.find((a) => a instanceof Error)
  return err === undefined ? {} : { err: summary(err) }
}

interface ErrorSummary {
  readonly type: string
  readonly code?: string
}

/**
 * What an exporter's error may be logged as: its class and its code (an
 * HTTP status, a gRPC status, `ECONNREFUSED`). Not its message, which for
 * a refused export is the collector's reason phrase, nor its `data`, the
 * collector's answer body.
 */
function summary(ex: unknown): ErrorSummary {
  if (typeof ex !== 'object' || ex === null) return { type: typeof ex }
  const { name, code } = ex as { name?: unknown; code?: unknown }
  return {
    type: typeof name === 'string' ? name : 'Error',
    ...(typeof code === 'string' || typeof code === 'number' ? { code: String(code) } : {}),
  }
}
