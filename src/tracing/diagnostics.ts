import { type DiagLogger, DiagLogLevel, diag } from '@opentelemetry/api'
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
  return () => diag.disable()
}

/** An error among the arguments goes through the log's `err` serializer; the rest is left out, as it may quote a peer. */
function fields(args: unknown[]): { err?: Error } {
  const err = args.find((a) => a instanceof Error)
  return err === undefined ? {} : { err }
}
