import rateLimit from '@fastify/rate-limit'
import fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerFactory,
  LogController,
} from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { gatehouseError } from '../errors.js'
import { authRoutes } from '../http/auth-routes.js'
import { backchannelLogoutRoute } from '../http/backchannel-logout.js'
import { deferContinue } from '../http/expect-continue.js'
import { healthRoutes, type ReadinessFailure } from '../http/health.js'
import { logoutEverywhereRoute } from '../http/logout-everywhere.js'
import type { OidcClient } from '../oidc/client.js'
import { refuseUnlistedMethod } from '../proxy/methods.js'
import { registerProxyRoutes } from '../proxy/routes.js'
import { cookiesPlugin } from '../session/cookies.js'
import { Sessions } from '../session/sessions.js'
import type { Coordination } from '../tokens/user-tokens.js'
import { frameworkError, installErrorHandling } from './error-handler.js'
import { Lasting } from './lasting.js'
import { refuseFaultyFraming } from './legacy-framing.js'
import { connectionsCheckingInterval } from './listener.js'
import { loggerOptions, requestLogger } from './logger.js'
import type { GatewayMetrics } from './metrics.js'
import { refuseMalformedTarget } from './request-target.js'
import { refuseRepeatedHost } from './single-host.js'
import type { Stores } from './stores.js'

/** Seams for tests and embedding; production passes none of them. */
export interface GatewayOptions {
  /** Clock for token expiry and session timeouts, epoch ms. */
  readonly now?: () => number
  /** A ready pino logger, used instead of building one from `logging`. */
  readonly loggerInstance?: FastifyBaseLogger
  /** Where log lines go instead of stdout (tests capture them here). */
  readonly logStream?: { write(line: string): void }
  /** Stores to use instead of those named by `session.store`. */
  readonly stores?: Stores
  /** Initial lifetime of the refresh lock, ms; default: the IdP timeout plus 5 s. */
  readonly lockTtl?: number
  /** See `UserTokensOptions.coordination`: tests only. */
  readonly coordination?: Coordination
  /** How often open WebSockets re-check their session, ms; default 5 s. */
  readonly websocketRecheck?: number
  /**
   * What outlives this app, made by the first app of the process: with it,
   * the app borrows the stores, metrics and IdP parts and closes none of
   * them (src/server/reload.ts). Without it, the app makes and owns them.
   */
  readonly lasting?: Lasting
  /** The app makes the lasting parts but leaves closing them to the caller, whose later apps borrow them. */
  readonly keepLasting?: boolean
  /** Mounts the app on a `GatewayListener` instead of a server of its own (src/server/listener.ts). */
  readonly serverFactory?: FastifyServerFactory
}

export interface GatehouseState {
  readonly config: GatehouseConfig
  readonly stores: Stores
  readonly oidc: OidcClient
  readonly metrics: GatewayMetrics
  /** The parts this app shares with the apps a reload builds after it. */
  readonly lasting: Lasting
  /** Resolves once the IdP has been discovered. */
  whenDiscovered(): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    gatehouse: GatehouseState
  }
}

/**
 * Builds the gateway for one config without listening, so tests can
 * `inject` and the CLI can own `listen`, signals and shutdown.
 */
export async function buildGateway(
  config: GatehouseConfig,
  options: GatewayOptions = {},
): Promise<FastifyInstance> {
  const now = options.now ?? Date.now
  const app = fastify({
    ...(options.loggerInstance
      ? { loggerInstance: options.loggerInstance }
      : {
          logger: { ...loggerOptions(config), ...(options.logStream ? { stream: options.logStream } : {}) },
        }),
    trustProxy: config.server.trustProxy,
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
    return503OnClosing: true,
    frameworkErrors: frameworkError,
    ...(options.serverFactory ? { serverFactory: options.serverFactory } : {}),
  }) as unknown as FastifyInstance

  // Sessions, locks, caches and the IdP client outlive one config: a
  // reload's app borrows them from the first (lasting.ts).
  const lasting =
    options.lasting ??
    (await Lasting.create(config, app.log, {
      now,
      stores: options.stores,
      lockTtl: options.lockTtl,
      coordination: options.coordination,
    }))
  const { stores, metrics } = lasting
  const idp = lasting.idpFor(config)
  const { oidc, refusals, userTokens, clientTokens } = idp
  const sessions = new Sessions(stores.sessions, config, now, {
    revoke: (refreshToken) =>
      oidc.revoke(refreshToken).catch((err: { code?: string }) => {
        app.log.warn({ code: err.code }, 'refresh token revocation failed')
      }),
  })

  app.decorate('gatehouse', {
    config,
    stores,
    oidc,
    metrics,
    lasting,
    whenDiscovered: () => idp.whenDiscovered(),
  })
  app.decorateRequest('upstreamToken', null)

  installErrorHandling(app, () => metrics.storeErrors.inc())
  // First of all hooks, on every path: before any cookie is opened or any
  // code parses the target.
  app.addHook('onRequest', refuseMalformedTarget)
  app.addHook('onRequest', refuseRepeatedHost)
  app.addHook('onRequest', refuseFaultyFraming)
  // Before the cookie plugin's hook: a method the route refuses costs no session work.
  app.addHook('onRequest', refuseUnlistedMethod)
  deferContinue(app)
  await app.register(cookiesPlugin, { config })

  app.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest(
      request.routeOptions.url ?? 'unmatched',
      request.method,
      reply.statusCode,
      reply.elapsedTime / 1000,
    )
    done()
  })
  if (config.logging.accessLog) {
    app.addHook('onResponse', (request, reply, done) => {
      const path = request.routeOptions.url ?? 'unmatched'
      request.log.info(
        { method: request.method, path, status: reply.statusCode, ms: reply.elapsedTime },
        'request',
      )
      done()
    })
  }

  await app.register(rateLimit, {
    global: false,
    // Shared across instances when sessions are; a store outage must not
    // lock everyone out of signing in, so limits fail open.
    ...(stores.redis
      ? { redis: stores.redis, nameSpace: `${config.session.keyPrefix}rl:`, skipOnError: true }
      : {}),
    errorResponseBuilder: (_request, context) =>
      gatehouseError(
        'GATEHOUSE_ERR_RATE_LIMITED',
        `Too many sign-in attempts from this address. Retry in ${Math.ceil(context.ttl / 1000)} s.`,
      ),
  })

  // Gateway-made responses are never cached and never sniffed; proxied
  // responses are the upstream's business and pass through untouched.
  await app.register(async function ownResponses(scope) {
    scope.addHook('onSend', (_request, reply, payload, done) => {
      reply.header('cache-control', 'no-store')
      reply.header('x-content-type-options', 'nosniff')
      done(null, payload)
    })
    await authRoutes(scope, {
      config,
      oidc,
      sessions,
      onLogin: (refreshToken) => metrics.logins.inc({ refresh_token: refreshToken }),
    })
    await backchannelLogoutRoute(scope, { config, oidc, sessions, replay: stores.replay, now })
    await logoutEverywhereRoute(scope, { config, oidc, sessions })
    await healthRoutes(scope, {
      async check() {
        const idp: 'ok' | ReadinessFailure = !oidc.discovered
          ? { code: 'GATEHOUSE_ERR_IDP_UNAVAILABLE', detail: 'not discovered' }
          : oidc.incompatibility === undefined
            ? 'ok'
            : { code: 'GATEHOUSE_ERR_IDP_INCOMPATIBLE', detail: oidc.incompatibility }
        let store: 'ok' | ReadinessFailure = 'ok'
        try {
          await stores.sessions.ping()
        } catch (err) {
          store = { code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE', detail: (err as Error).message }
        }
        const refused = refusals.detail
        const clientAuth: 'ok' | ReadinessFailure =
          refused === undefined
            ? 'ok'
            : { code: 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED', detail: refused, degraded: true }
        return { idp, store, clientAuth }
      },
    })
  })

  // Set once close() begins; see the preClose hook below.
  let draining: NodeJS.Timeout | undefined
  await registerProxyRoutes(
    app,
    config,
    { config, sessions, userTokens, clientTokens },
    {
      onUpstreamError: (route, kind) => metrics.upstreamErrors.inc({ route, kind }),
      onTokenRetry: (route) => metrics.tokenRetries.inc({ route }),
      onCookiesDropped: (route, count) => metrics.upstreamCookiesDropped.inc({ route }, count),
      draining: () => draining !== undefined,
      now,
      limits: lasting.sockets,
      ...(options.websocketRecheck === undefined ? {} : { websocketRecheck: options.websocketRecheck }),
      websocket: {
        refused: (route, limit) => metrics.websocketRefusals.inc({ route, limit }),
        broken: (route, leg, bound) => metrics.websocketBroken.inc({ route, leg, bound }),
        open: (route, delta) => metrics.websocketsOpen.inc({ route }, delta),
      },
    },
  )

  app.addHook('onReady', async () => {
    idp.discover(app.log)
  })
  // Draining: answers in flight carry `Connection: close`, and idle
  // keep-alive sockets are closed as they go idle, so close() ends when the
  // last request does instead of when clients drop their connections.
  app.addHook('preClose', (done) => {
    app.server.closeIdleConnections()
    draining = setInterval(() => app.server.closeIdleConnections(), 50)
    draining.unref()
    done()
  })
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (draining) reply.header('connection', 'close')
    done(null, payload)
  })
  app.addHook('onClose', async () => {
    clearInterval(draining)
    await lasting.release(idp)
    if (!options.lasting && !options.keepLasting) await lasting.close()
  })
  return app
}
