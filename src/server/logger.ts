import type { FastifyBaseLogger, FastifyLoggerOptions } from 'fastify'
import type { Bindings, ChildLoggerOptions, PinoLoggerOptions } from 'fastify/types/logger.js'
import type { GatehouseConfig } from '../config/types.js'
import { logFields } from '../tracing/spans.js'

/**
 * Pino options. Requests are logged by path only: query strings carry
 * authorization codes, states and logout handles. Headers that carry
 * credentials are redacted wherever they appear.
 */
export function loggerOptions(config: GatehouseConfig): FastifyLoggerOptions & PinoLoggerOptions {
  return {
    level: config.logging.level,
    // trace_id and span_id of the active span, so a log line leads to its trace.
    ...(config.tracing.enabled ? { mixin: logFields } : {}),
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'res.headers["set-cookie"]',
        'headers.authorization',
        'headers.cookie',
        '*.access_token',
        '*.refresh_token',
        '*.id_token',
        '*.accessToken',
        '*.refreshToken',
        '*.idToken',
        '*.client_secret',
        '*.clientSecret',
        '*.code',
      ],
      censor: '[redacted]',
    },
    serializers: {
      // Fastify's type has every `err` come out with a message and a stack,
      // as pino's standard serializer makes them up; ours makes up neither.
      err: errorFields as ErrorSerializer,
      req(request: { method?: string; url?: string }) {
        const url = request.url ?? ''
        const q = url.indexOf('?')
        return { method: request.method ?? '', path: q === -1 ? url : url.slice(0, q) }
      },
    },
  }
}

type ErrorSerializer = NonNullable<NonNullable<FastifyLoggerOptions['serializers']>['err']>

/**
 * Errors are logged by name, code, message and stack, and their cause by
 * name and code: every other field an error carries is payload. undici's
 * HTTPParserError keeps the upstream's raw bytes in `data`, `Set-Cookie`
 * headers included, and whatever logs an error whole (Fastify's error
 * handler and stream-error line, @fastify/reply-from) would spill them. The code
 * goes out as `errorCode` because `*.code` is redacted (authorization codes).
 * A summary logged in an error's place, such as `{ name, code }` where the
 * message would quote a peer (tracing/), is logged as just what it has.
 */
function errorFields(
  err: Error,
): { type: string; message?: string; stack?: string } & Record<string, unknown> {
  const { code } = err as { code?: unknown }
  const cause = err.cause as { code?: unknown; name?: unknown } | undefined
  return {
    type: err.name,
    ...(typeof code === 'string' || typeof code === 'number' ? { errorCode: code } : {}),
    ...(typeof err.message === 'string' ? { message: err.message } : {}),
    ...(typeof err.stack === 'string' ? { stack: err.stack } : {}),
    ...(cause !== null && typeof cause === 'object'
      ? { cause: { type: String(cause.name ?? 'unknown'), errorCode: cause.code } }
      : {}),
  }
}

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'
type LogArgs = Parameters<FastifyBaseLogger['info']>
/** What pino adds to Fastify's logger interface. */
type PinoLogger = FastifyBaseLogger & {
  isLevelEnabled(level: string): boolean
  bindings(): Bindings
}

/**
 * The per-request logger, made only when the request logs something.
 * Fastify gives every request a child logger carrying its `reqId`; with the
 * wildcard paths above, pino runs each binding through @pinojs/redact, which
 * parses every path again: about 3.8 KB of garbage per request (one byte in
 * seven the gateway allocates), for a logger most requests never write to.
 * Levels that are off stay no-ops and make nothing.
 */
class RequestLogger {
  readonly #parent: PinoLogger
  readonly #bindings: Bindings
  #child: PinoLogger | undefined

  constructor(parent: PinoLogger, bindings: Bindings) {
    this.#parent = parent
    this.#bindings = bindings
  }

  get level(): string {
    return this.#child?.level ?? this.#parent.level
  }

  set level(level: string) {
    this.#real().level = level
  }

  isLevelEnabled(level: string): boolean {
    return (this.#child ?? this.#parent).isLevelEnabled(level)
  }

  fatal(...args: LogArgs): void {
    this.#write('fatal', args)
  }

  error(...args: LogArgs): void {
    this.#write('error', args)
  }

  warn(...args: LogArgs): void {
    this.#write('warn', args)
  }

  info(...args: LogArgs): void {
    this.#write('info', args)
  }

  debug(...args: LogArgs): void {
    this.#write('debug', args)
  }

  trace(...args: LogArgs): void {
    this.#write('trace', args)
  }

  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options)
  }

  bindings(): Bindings {
    return this.#real().bindings()
  }

  #write(level: Level, args: LogArgs): void {
    if (this.isLevelEnabled(level)) this.#real()[level](...args)
  }

  #real(): PinoLogger {
    if (!this.#child) this.#child = this.#parent.child(this.#bindings) as PinoLogger
    return this.#child
  }
}

/**
 * Fastify's `childLoggerFactory`. Route-level options (a log level,
 * serializers), or a logger that is not pino, get a real child at once.
 */
export function requestLogger(
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildLoggerOptions,
): FastifyBaseLogger {
  const pino = logger as PinoLogger
  if (hasOptions(options) || typeof pino.isLevelEnabled !== 'function') return logger.child(bindings, options)
  return new RequestLogger(pino, bindings) as unknown as FastifyBaseLogger
}

/** Whether a route gave its logger options; without the array `Object.keys` makes on every request. */
function hasOptions(options: ChildLoggerOptions): boolean {
  for (const _ in options) return true
  return false
}
