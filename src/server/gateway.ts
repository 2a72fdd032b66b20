import rateLimit from '@fastify/rate-limit'
import fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { gatehouseError } from '../errors.js'
import { deferContinue } from '../guards/expect-continue.js'
import { refuseRepeatedHost } from '../guards/single-host.js'
import { authRoutes } from '../http/auth-routes.js'
import { backchannelLogoutRoute } from '../http/backchannel-logout.js'
import { healthRoutes, type ReadinessFailure } from '../http/health.js'
import { logoutEverywhereRoute } from '../http/logout-everywhere.js'
import { OidcClient } from '../oidc/client.js'
import { ClientRefusals } from '../oidc/client-refusals.js'
import { type Discovery, discoverWithRetry } from '../oidc/discovery.js'
import { refuseUnlistedMethod } from '../proxy/methods.js'
import { registerProxyRoutes } from '../proxy/routes.js'
import { cookiesPlugin } from '../session/cookies.js'
import { Sessions } from '../session/sessions.js'
import { ClientTokens } from '../tokens/client-tokens.js'
import { logRefresh } from '../tokens/refresh-log.js'
import { type Coordination, UserTokens } from '../tokens/user-tokens.js'
import { frameworkError, installErrorHandling } from './error-handler.js'
import { idpObserver } from './idp-observer.js'
import { refuseFaultyFraming } from './legacy-framing.js'
import { loggerOptions, requestLogger } from './logger.js'
import { GatewayMetrics } from './metrics.js'
import { refuseMalformedTarget } from './request-target.js'
import { createStores, type Stores } from './stores.js'

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
}

export interface GatehouseState {
  readonly config: GatehouseConfig
  readonly stores: Stores
  readonly oidc: OidcClient
  readonly metrics: GatewayMetrics
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
  }) as unknown as FastifyInstance

  const stores = options.stores ?? (await createStores(config, now, app.log))
  let discovery: Discovery | undefined
  const lockTtl = options.lockTtl ?? config.oidc.timeout + 5_000

  const metrics = new GatewayMetrics(stores.sessions)
  let unwatchStore: (() => void) | undefined
  const refusals = new ClientRefusals()
  const oidc = new OidcClient(config, now, idpObserver(config, app.log, metrics, refusals))
  if (stores.sessions.kind === 'redis') {
    // Loaded only for Redis, as in createStores: memory mode never loads ioredis.
    const { reportSessionCache } = await import('./redis-stores.js')
    reportSessionCache(stores.sessions, app.log)
    if (stores.redis) {
      const { logAvailability } = await import('../redis/availability.js')
      unwatchStore = logAvailability(stores.redis, app.log, config.session.store.display)
    }
  }
  const sessions = new Sessions(stores.sessions, config, now, {
    revoke: (refreshToken) =>
      oidc.revoke(refreshToken).catch((err: { code?: string }) => {
        app.log.warn({ code: err.code }, 'refresh token revocation failed')
      }),
  })
  // Both token kinds fetch once per lifetime under the same lock discipline.
  const fetchOnce = {
    locks: stores.locks,
    oidc,
    refreshBefore: config.tokens.refreshBefore,
    refreshWait: config.tokens.refreshWait,
    lockTtl,
    now,
  }
  const userTokens = new UserTokens({
    ...fetchOnce,
    store: stores.sessions,
    unavailableLimit: config.tokens.unavailableLimit,
    coordination: options.coordination ?? 'single-flight',
    cooldown: { store: stores.cooldowns, ms: config.tokens.retryCooldown },
    observer: {
      refreshed(outcome, ms, resource, sessionId, failure) {
        metrics.refreshes.inc({ outcome, resource })
        metrics.refreshDuration.observe(ms / 1000)
        logRefresh(app.log, { outcome, ms, sessionId, resource, failure })
      },
      joined: () => metrics.refreshJoins.inc(),
      cooledDown: (route) => metrics.tokenRetryCooldowns.inc({ route }),
    },
  })
  const clientTokens = new ClientTokens({
    ...fetchOnce,
    cache: stores.clientTokens,
    observer: {
      hit: () => metrics.clientTokenCache.inc({ result: 'hit' }),
      miss: () => metrics.clientTokenCache.inc({ result: 'miss' }),
    },
  })

  app.decorate('gatehouse', {
    config,
    stores,
    oidc,
    metrics,
    whenDiscovered: () =>
      discovery ? discovery.ready : Promise.reject(new Error('gateway is not ready yet')),
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
    { config, sessions, userTokens, clientTokens, dpop: oidc.dpopProofs },
    {
      onUpstreamError: (route, kind) => metrics.upstreamErrors.inc({ route, kind }),
      onTokenRetry: (route) => metrics.tokenRetries.inc({ route }),
      onCookiesDropped: (route, count) => metrics.upstreamCookiesDropped.inc({ route }, count),
      draining: () => draining !== undefined,
      now,
      ...(options.websocketRecheck === undefined ? {} : { websocketRecheck: options.websocketRecheck }),
      websocket: {
        refused: (route, limit) => metrics.websocketRefusals.inc({ route, limit }),
        broken: (route, leg, bound) => metrics.websocketBroken.inc({ route, leg, bound }),
        open: (route, delta) => metrics.websocketsOpen.inc({ route }, delta),
      },
    },
  )

  app.addHook('onReady', async () => {
    discovery = discoverWithRetry(oidc, app.log)
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
    discovery?.stop()
    // Our own close of the connection is no outage.
    unwatchStore?.()
    await oidc.close()
    await stores.close()
  })
  return app
}

/**
 * Node enforces `headersTimeout` and `requestTimeout` only when it sweeps its
 * connections, every 30 s by default, so a 10 s budget fired at up to 40 s.
 * Sweeping every quarter of the shortest budget, at most every second, fires
 * each within a second of its value; a sweep is a walk over open sockets.
 */
function connectionsCheckingInterval(server: GatehouseConfig['server']): number {
  const budgets = [server.headersTimeout, server.requestTimeout].filter((ms) => ms > 0)
  return Math.max(50, Math.min(1_000, Math.floor(Math.min(...budgets, 4_000) / 4)))
}
