import { context, type DiagLogger, DiagLogLevel, diag, ROOT_CONTEXT } from '@opentelemetry/api'
import { diagLogLevelFromString, loggingErrorHandler, setGlobalErrorHandler } from '@opentelemetry/core'
import type { FastifyBaseLogger } from 'fastify'

/** What the OpenTelemetry API's own diagnostics say, in Gatehouse's log. */
const PREFIX = 'OpenTelemetry: '

/**
 * Sends OpenTelemetry's diagnostics (a sampler setting it replaced, an
 * export the collector refused) to the gateway's log, at warn and above,
 * or at the level `OTEL_LOG_LEVEL` names (`debug` and `verbose` at the
 * log's debug and trace levels, which `logLevel` must let through).
 * Without this, what the SDK and sampler.ts report goes nowhere, and a
 * wrong `OTEL_TRACES_SAMPLER` would change the sampling in silence. The
 * SDK's own console logger, which it installs for `OTEL_LOG_LEVEL`, is kept
 * out (sdk.ts): it would print each message as the SDK wrote it.
 *
 * No message is logged as the SDK wrote it: it quotes what it could not
 * use, such as an endpoint that does not parse, credentials and all, so
 * the exporter's secrets in `env` are taken out first (`redactor`).
 *
 * Returns how to take the logger back, for the last gateway to stop.
 */
export function reportDiagnostics(log: FastifyBaseLogger, env: NodeJS.ProcessEnv): () => void {
  const redact = redactor(env)
  // Outside any request's context, as the error handler below: an export
  // runs in the context of one of the requests whose spans it sends, and its
  // failure would be logged with that request's trace_id and span_id.
  const report =
    (level: 'error' | 'warn' | 'info' | 'debug' | 'trace') =>
    (message: string, ...args: unknown[]) =>
      context.with(ROOT_CONTEXT, () => log[level](fields(args), PREFIX + redact(message)))
  const logger: DiagLogger = {
    error: report('error'),
    warn: report('warn'),
    info: report('info'),
    debug: report('debug'),
    verbose: report('trace'),
  }
  diag.setLogger(logger, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true })
  // Read with ours in place, so an unknown level's warning is logged too.
  const level = diagLogLevelFromString(env.OTEL_LOG_LEVEL)
  if (level !== undefined) diag.setLogger(logger, { logLevel: level, suppressOverrideMessage: true })
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

const REDACTED = 'REDACTED'

/**
 * The exporter's headers and endpoints, general and per signal
 * (`OTEL_EXPORTER_OTLP_TRACES_HEADERS`): a hosted collector's credentials
 * are in the headers, and sometimes in the endpoint's user-info or query.
 */
const HEADERS = /^OTEL_EXPORTER_OTLP_(?:\w+_)?HEADERS$/
const ENDPOINT = /^OTEL_EXPORTER_OTLP_(?:\w+_)?ENDPOINT$/

/**
 * A URL in a message, up to whitespace or a quote: the SDK quotes the URLs
 * it reports (`'…'`), and one that does not parse may hold a space.
 */
const URL_IN_TEXT = /\b[a-z][a-z\d+.-]*:\/\/[^\s'"<>]*/gi

/**
 * What a diagnostic may say, without a credential the environment gave the
 * exporter. The SDK quotes what it cannot use: an endpoint that does not
 * parse (`'http://user:secret@collector host:4318'`), a header it ignores.
 * Taken as text, never parsed, since these are the values that do not parse.
 *
 * The configured values are replaced wherever they appear, whole: each
 * header's value, as written and percent-decoded (the SDK decodes them),
 * and each endpoint in its redacted form, so a password with a space or a
 * quote in it goes too. Then any other URL loses its user-info and its
 * query values, as spans' URLs do (sdk.ts).
 */
function redactor(env: NodeJS.ProcessEnv): (message: string) => string {
  const known = new Map<string, string>()
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value.trim() === '') continue
    if (ENDPOINT.test(name)) known.set(value, redactUrl(value))
    else if (HEADERS.test(name)) {
      known.set(value, REDACTED)
      for (const secret of headerValues(value)) known.set(secret, REDACTED)
    }
  }
  // Longest first, so a value inside another is not replaced out of it first.
  const replacements = [...known].sort(([a], [b]) => b.length - a.length)
  return (message) => {
    let text = message
    for (const [value, redacted] of replacements) text = text.replaceAll(value, redacted)
    return text.replace(URL_IN_TEXT, redactUrl)
  }
}

/** The values of `key=value,…` (W3C Baggage's format, metadata after `;`), as written and as decoded. */
function headerValues(list: string): string[] {
  const values: string[] = []
  for (const entry of list.split(',')) {
    const pair = entry.split(';')[0]!
    const eq = pair.indexOf('=')
    const value = eq === -1 ? '' : pair.slice(eq + 1).trim()
    if (value === '') continue
    values.push(value)
    try {
      values.push(decodeURIComponent(value))
    } catch {
      // Not decodable: the SDK drops it, and the value as written is covered.
    }
  }
  return values
}

/**
 * `url` without its user-info and its query values. The user-info runs to
 * the last `@`, as a URL parser reads it; in a URL that does not parse,
 * that may take some of the host or path with it, which is better than a
 * password left behind. Query keys stay, as in a span's `url.query`.
 */
function redactUrl(url: string): string {
  // An endpoint without a scheme does not parse either.
  const scheme = url.indexOf('://')
  const start = scheme === -1 ? 0 : scheme + 3
  const at = url.lastIndexOf('@')
  const text = at >= start ? `${url.slice(0, start)}${REDACTED}${url.slice(at)}` : url
  const q = text.indexOf('?', start)
  if (q === -1) return text
  const hash = text.indexOf('#', q)
  const end = hash === -1 ? text.length : hash
  const query = text
    .slice(q + 1, end)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=')
      if (eq === -1) return pair === '' ? pair : REDACTED
      return `${pair.slice(0, eq)}=${REDACTED}`
    })
    .join('&')
  return `${text.slice(0, q + 1)}${query}${text.slice(end)}`
}

/** An error among the arguments, summarised; the rest is left out, as it may quote a peer. */
function fields(args: unknown[]): { err?: ErrorSummary } {
  const err = args.find((a) => a instanceof Error)
  return err === undefined ? {} : { err: summary(err) }
}

/**
 * An error as the gateway's `err` serializer reads one (src/server/logger.ts),
 * with only what may be logged: it comes out as `{ type, errorCode }`. Under
 * `code` of its own it would be redacted there, as authorization codes are.
 */
interface ErrorSummary {
  readonly name: string
  readonly code?: string
}

/**
 * What an exporter's error may be logged as: its class and its code (an
 * HTTP status, a gRPC status, `ECONNREFUSED`). Not its message, which for
 * a refused export is the collector's reason phrase, nor its stack, which
 * begins with that message, nor its `data`, the collector's answer body.
 */
function summary(ex: unknown): ErrorSummary {
  if (typeof ex !== 'object' || ex === null) return { name: typeof ex }
  const { name, code } = ex as { name?: unknown; code?: unknown }
  return {
    name: typeof name === 'string' ? name : 'Error',
    ...(typeof code === 'string' || typeof code === 'number' ? { code: String(code) } : {}),
  }
}
