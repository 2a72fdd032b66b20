import { createServer, type RequestListener, type ServerOptions } from 'node:http'
import fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerFactory,
  LogController,
} from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { answerClientError } from './client-errors.js'
import { frameworkError } from './error-handler.js'
import { loggerOptions, requestLogger } from './logger.js'
import { inTurn } from './pipelined-requests.js'
import { nextRequestId } from './request-id.js'

export interface InstanceOptions {
  /** A ready pino logger, used instead of building one from `logging`. */
  readonly loggerInstance?: FastifyBaseLogger | undefined
  /** Where log lines go instead of stdout (tests capture them here). */
  readonly logStream?: { write(line: string): void } | undefined
  /**
   * Mounts the app on a `GatewayListener` (listener.ts) instead of a server
   * of its own; the server settings below are then the listener's.
   */
  readonly serverFactory?: FastifyServerFactory | undefined
}

/** The bare Fastify instance: its logger, the client-side budgets, and what its router refuses. */
export function createInstance(config: GatehouseConfig, options: InstanceOptions = {}): FastifyInstance {
  return fastify({
    ...(options.loggerInstance
      ? { loggerInstance: options.loggerInstance }
      : {
          logger: { ...loggerOptions(config), ...(options.logStream ? { stream: options.logStream } : {}) },
        }),
    trustProxy: config.server.trustProxy ? trustNearestProxy : false,
    // Client-side budgets: slow or oversized requests never hold a socket.
    http: {
      headersTimeout: config.server.headersTimeout,
      maxHeaderSize: config.server.maxHeaderSize,
      connectionsCheckingInterval: connectionsCheckingInterval(config.server),
    },
    requestTimeout: config.server.requestTimeout,
    keepAliveTimeout: config.server.keepAliveTimeout,
    // Fastify's two lines per request off; `logging.accessLog` adds our one.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: requestLogger,
    // One count for the process, not one per instance: each reload builds one.
    genReqId: nextRequestId,
    // A request that arrives while the app closes is refused by the
    // draining plugin's hook instead, with the catalogue's 503, counted,
    // logged and traced like any answer; Fastify's comes before every hook.
    return503OnClosing: false,
    frameworkErrors: frameworkError,
    clientErrorHandler: answerClientError,
    serverFactory: options.serverFactory ?? ownServer,
  }) as unknown as FastifyInstance
}

/** What `fastify()` passes a server factory of the options below, with its defaults. */
interface FastifyServerSettings {
  readonly http?: ServerOptions
  readonly keepAliveTimeout: number
  readonly requestTimeout: number
  readonly connectionTimeout: number
}

/**
 * The server of an app that is not mounted on a `GatewayListener`, made as
 * Fastify makes its own, but serving each connection's requests one at a
 * time (`inTurn`, pipelined-requests.ts).
 */
const ownServer: FastifyServerFactory = (handler, fastifyOptions) => {
  const options = fastifyOptions as unknown as FastifyServerSettings
  const server = createServer(options.http ?? {}, inTurn(handler as RequestListener))
  server.keepAliveTimeout = options.keepAliveTimeout
  server.requestTimeout = options.requestTimeout
  server.setTimeout(options.connectionTimeout)
  return server
}

/**
 * `server.trustProxy`: the one proxy in front, the socket's peer, is
 * trusted, and no hop before it. Fastify's `true` trusts every hop, so
 * `request.ip` was the first X-Forwarded-For entry, which the client
 * writes; here it is the last, the address that proxy saw. A hop count
 * would do it, but Fastify 5 reads a number as trusting no hop at all.
 * The host and protocol come from that proxy's headers either way.
 */
function trustNearestProxy(_address: string, hop: number): boolean {
  return hop === 0
}

/**
 * Node enforces `headersTimeout` and `requestTimeout` only when it sweeps its
 * connections, every 30 s by default, so a 10 s budget fired at up to 40 s.
 * Sweeping every quarter of the shortest budget, at most every second, fires
 * each within a second of its value; a sweep is a walk over open sockets.
 */
export function connectionsCheckingInterval(server: GatehouseConfig['server']): number {
  const budgets = [server.headersTimeout, server.requestTimeout].filter((ms) => ms > 0)
  return Math.max(50, Math.min(1_000, Math.floor(Math.min(...budgets, 4_000) / 4)))
}
