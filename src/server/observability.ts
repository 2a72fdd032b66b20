import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Duplex } from 'node:stream'
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onRequestHookHandler,
  onResponseHookHandler,
} from 'fastify'
import fp from 'fastify-plugin'
import type { GatehouseConfig, IdentityProviderConfig } from '../config/types.js'
import { answerCodeOf, isGatehouseError, type LogCode } from '../errors.js'
import { methodLabel } from '../method-label.js'
import type { OidcObserver } from '../oidc/client.js'
import { ClientRefusals } from '../oidc/client-refusals.js'
import { failureFields, idpFailureOf } from '../oidc/translate.js'
import type { ProxyRouteHooks } from '../proxy/routes.js'
import { isUpgrade } from '../proxy/websocket/upgrade.js'
import type { ClientTokensOptions } from '../tokens/client-tokens.js'
import { logExchange } from '../tokens/exchange-log.js'
import { logRefresh } from '../tokens/refresh-log.js'
import type { RefreshObserver } from '../tokens/refresh-observer.js'
import { registerTracing, type UnroutedTracer } from '../tracing/plugin.js'
import { inOwnContext } from '../tracing/spans.js'
import { hooksOf } from './hooks-of.js'
import { idpObserver } from './idp-observer.js'
import { configLabels, GatewayMetrics } from './metrics.js'
import { nextRequestId } from './request-id.js'

/** What the other parts tell: each observer counts in `metrics` and logs what an operator needs. */
export interface Observers {
  readonly metrics: GatewayMetrics
  /** The IdP's refusals of the gateway's own credentials, for `/readyz`. */
  readonly refusals: ClientRefusals
  /** What one provider's client reports to. */
  readonly idp: (provider: IdentityProviderConfig) => OidcObserver
  readonly refresh: RefreshObserver
  readonly clientTokens: NonNullable<ClientTokensOptions['observer']>
  readonly proxy: Pick<ProxyRouteHooks, 'onUpstreamError' | 'onTokenRetry' | 'onCookiesDropped' | 'websocket'>
  /** Told of each completed login, by whether the IdP issued a refresh token, and at which provider. */
  login(refreshToken: 'issued' | 'missing', idp: string): void
  /**
   * Runs `answer`, the router's answer to a request it refused before any
   * hook ran (a target that does not percent-decode), and observes it as
   * the hooks observe a routed one: counted, logged and traced under the
   * route label `unrouted`.
   */
  unrouted(request: FastifyRequest, reply: FastifyReply, answer: () => void): void
  /** Told of each session a sign-in ended beyond `session.maxPerUser`, and of each sign-in that could not check it. */
  overBound(result: 'ended' | 'unchecked', idp: string): void
}

/**
 * The route label of a request the router answered without routing it. Not
 * its path: what a client sends must not add series, nor any line quote it.
 */
export const UNROUTED = 'unrouted'

declare module 'fastify' {
  interface FastifyInstance {
    observers: Observers
  }
}

export interface ObservabilityOptions {
  readonly logging: Pick<GatehouseConfig['logging'], 'accessLog'>
  /** The first provider's name: the `idp` label of what names no provider (a client token of a route that lists none). */
  readonly firstProvider: string
  /** The process's metrics and refusals, when a config reload builds this app (lasting.ts). */
  readonly shared?: { readonly metrics: GatewayMetrics; readonly refusals: ClientRefusals } | undefined
  readonly tracing: GatehouseConfig['tracing']
  /** What names the values of the metrics' `idp`, `resource` and `audience` labels, whose series end with the last app of a config that has them. */
  readonly labelled: Pick<GatehouseConfig, 'identityProviders' | 'routes'>
}

/**
 * Metrics, the access log, traces (`tracing.enabled`) and the observers
 * every other part reports to.
 * Shared (not encapsulated): its hooks see every route, and the services,
 * routes and proxy take their observers from `app.observers`.
 */
export const observability = fp(
  async function observability(app: FastifyInstance, opts: ObservabilityOptions) {
    // First of this plugin's hooks, so the server span is open when the others run.
    const traceUnrouted = await registerTracing(app, opts.tracing)
    const metrics = opts.shared?.metrics ?? new GatewayMetrics()
    const refusals = opts.shared?.refusals ?? new ClientRefusals()
    app.decorate('observers', {
      metrics,
      refusals,
      idp: (provider) => idpObserver(provider, app.log, metrics, refusals),
      refresh: {
        refreshed(outcome, ms, resource, sessionId, failure, idp = opts.firstProvider) {
          metrics.refreshes.inc({ outcome, resource, idp })
          metrics.refreshDuration.observe({ idp }, ms / 1000)
          logRefresh(app.log, { outcome, ms, sessionId, resource, failure, idp })
        },
        exchanged(outcome, ms, audience, sessionId, failure, idp, refused) {
          metrics.exchanges.inc({ outcome, audience, idp })
          logExchange(app.log, { outcome, ms, sessionId, audience, failure, idp, refused })
        },
        joined: () => metrics.refreshJoins.inc(),
        shortLived: shortLivedWarning(app.log, 'user', opts.firstProvider),
        cooledDown: (route) => metrics.tokenRetryCooldowns.inc({ route }),
      },
      clientTokens: {
        hit: (idp = opts.firstProvider) => metrics.clientTokenCache.inc({ result: 'hit', idp }),
        miss: (idp = opts.firstProvider) => metrics.clientTokenCache.inc({ result: 'miss', idp }),
        shortLived: shortLivedWarning(app.log, 'client', opts.firstProvider),
        cooledDown: (route) => metrics.tokenRetryCooldowns.inc({ route }),
        // No request fails, so no error line would tell of the outage.
        heldOver: (failed, idp = opts.firstProvider) =>
          app.log.warn(
            { code: failed.code, idp, ...failureFields(idpFailureOf(failed)) },
            'client-credentials token renewal failed: identity provider unavailable; the still-valid token is used until it expires',
          ),
      },
      proxy: {
        onUpstreamError: (route, kind) => metrics.upstreamErrors.inc({ route, kind }),
        onTokenRetry: (route) => metrics.tokenRetries.inc({ route }),
        onCookiesDropped: (route, count) => metrics.upstreamCookiesDropped.inc({ route }, count),
        websocket: {
          refused: (route, limit) => metrics.websocketRefusals.inc({ route, limit }),
          broken: (route, leg, bound) => metrics.websocketBroken.inc({ route, leg, bound }),
          open: (route, delta) => metrics.websocketsOpen.inc({ route }, delta),
          unserved: unservedObserver(metrics, opts.logging.accessLog, app.log),
        },
      },
      login: (refreshToken, idp) => metrics.logins.inc({ refresh_token: refreshToken, idp }),
      unrouted: unroutedObserver(metrics, opts.logging.accessLog, traceUnrouted),
      overBound: (result, idp) => metrics.sessionsOverBound.inc({ result, idp }),
    } satisfies Observers)

    app.addHook('onError', (_request, _reply, err, done) => {
      if (isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE') metrics.storeErrors.inc()
      done()
    })
    // Each route counts its own answers, its label bound when it is
    // registered; the root hook counts only what no route matched (Fastify's
    // `routeOptions`, which names the route, builds an object per read).
    // The metrics outlive this app (a reload's next shares them): its
    // routes' series end with it, unless another app serves them too.
    // So do the series of its config's resources, audiences and providers.
    const served = metrics.servedLabels()
    for (const [label, values] of configLabels(opts.labelled))
      for (const value of values) served.serve(label, value)
    app.addHook('onClose', () => served.close())
    app.addHook('onRoute', (route) => {
      served.serve('route', route.url)
      const observe = metrics.requestsOf(route.url)
      const count: onResponseHookHandler = (request, reply, done) => {
        observe(request.method, reply.statusCode, reply.elapsedTime / 1000)
        done()
      }
      route.onResponse = [...hooksOf(route.onResponse), count]
      // onResponse runs on the answer's `finish`, which an answer cut off
      // never reaches, not even when the handler replies later: counted at
      // the close instead, by a listener made once per route.
      const abandoned = unanswered((method) =>
        metrics.abandonedRequests.inc({ route: route.url, method: methodLabel(method) }),
      )
      const watch: onRequestHookHandler = (_request, reply, done) => {
        reply.raw.on('close', abandoned)
        done()
      }
      route.onRequest = [...hooksOf(route.onRequest), watch]
    })
    app.addHook('onResponse', (request, reply, done) => {
      if (request.is404)
        metrics.observeRequest('unmatched', request.method, reply.statusCode, reply.elapsedTime / 1000)
      done()
    })
    if (opts.logging.accessLog) {
      app.addHook('onResponse', (request, reply, done) => {
        inOwnContext(request.raw, logAnswered, request, reply)
        done()
      })
      // A request cut off gets its line too (logAbandoned).
      app.addHook('onRequest', (request, reply, done) => {
        const res = reply.raw
        res.on('close', () => {
          if (res.writableFinished || isUpgrade(request.raw)) return
          inOwnContext(request.raw, logAbandoned, request, reply)
        })
        done()
      })
    }
  },
  { name: 'gatehouse-observability', fastify: '5.x' },
)

/** The access line of a request answered in full. */
function logAnswered(request: FastifyRequest, reply: FastifyReply): void {
  const path = request.routeOptions.url ?? 'unmatched'
  // The catalogue code of the gateway's own error answer: a 400 says
  // which check refused it (a duplicate Host, a target that is no path).
  const code = answerCodeOf(request.raw)
  request.log.info(
    { method: request.method, path, status: reply.statusCode, ms: reply.elapsedTime, code },
    'request',
  )
}

/**
 * The access line of a request cut off, marked, with the status only when
 * one was sent: an ingress logs it as well (nginx's 499), and an operator
 * chasing a slow upstream looks for it here.
 */
function logAbandoned(request: FastifyRequest, reply: FastifyReply): void {
  const res = reply.raw
  const path = request.routeOptions.url ?? 'unmatched'
  request.log.info(
    {
      method: request.method,
      path,
      ...(res.headersSent ? { status: res.statusCode } : {}),
      ms: reply.elapsedTime,
      code: answerCodeOf(request.raw),
      abandoned: true,
    },
    'request',
  )
}

/**
 * `Observers.unrouted`. No hook runs for such a request, so neither the
 * route's counter, the access line nor @fastify/otel's span would see it:
 * an operator saw a client's 400s and nothing in the metrics, the log or
 * the traces. Its answer is observed at the response's close, as a
 * routed one at its `onResponse`, or counted abandoned when it was cut
 * off; the span, when tracing is on, is started before the answer, so
 * what the error handler logs is in its trace.
 */
function unroutedObserver(
  metrics: GatewayMetrics,
  accessLog: boolean,
  trace: UnroutedTracer | undefined,
): Observers['unrouted'] {
  return (request, reply, answer) => {
    const started = performance.now()
    const res = reply.raw
    const span = trace?.(request)
    const observe = () => {
      const ms = performance.now() - started
      const answered = res.writableFinished
      if (answered) metrics.observeRequest(UNROUTED, request.method, res.statusCode, ms / 1000)
      else metrics.abandonedRequests.inc({ route: UNROUTED, method: methodLabel(request.method) })
      if (accessLog)
        request.log.info(
          {
            method: request.method,
            path: UNROUTED,
            ...(res.headersSent ? { status: res.statusCode } : {}),
            ms,
            code: answerCodeOf(request.raw),
            ...(answered ? {} : { abandoned: true }),
          },
          'request',
        )
      span?.end(answered ? res.statusCode : undefined)
    }
    res.once('close', span ? () => span.run(observe) : observe)
    if (span) span.run(answer)
    else answer()
  }
}

/**
 * `WebSocketObserver.unserved`. An upgrade pipelined behind an answer is
 * neither routed nor answered (proxy/websocket/pipelined.ts): no hook
 * counted or logged it, and the client saw its connection close. It is
 * counted as a request cut off before its answer, under `unrouted`, and
 * its access line says so with a log code; it has no span, for it had no
 * answer, and the client sends it again on a new connection.
 */
function unservedObserver(
  metrics: GatewayMetrics,
  accessLog: boolean,
  log: FastifyBaseLogger,
): (request: IncomingMessage, socket: Duplex) => void {
  const code: LogCode = 'GATEHOUSE_UPGRADE_NOT_SERVED'
  return (request, socket) => {
    const started = performance.now()
    const method = request.method ?? 'GET'
    socket.once('close', () => {
      metrics.abandonedRequests.inc({ route: UNROUTED, method: methodLabel(method) })
      if (accessLog)
        log.info(
          {
            reqId: nextRequestId(),
            method,
            path: UNROUTED,
            ms: performance.now() - started,
            code,
            abandoned: true,
          },
          'request',
        )
    })
  }
}

/**
 * A response's `close` listener that calls `count` with the request's
 * method when the answer was not complete. A WebSocket upgrade's response
 * never finishes: its socket went to the bridge, which counts it.
 */
function unanswered(count: (method: string) => void): (this: ServerResponse) => void {
  return function closed(this: ServerResponse) {
    if (this.writableFinished || isUpgrade(this.req)) return
    count(this.req.method ?? 'GET')
  }
}

/**
 * Says once per provider that its `token` tokens live less than twice
 * `tokens.refreshBefore`, so the setting does not apply to them: the
 * operator who set it expects tokens renewed that long before they expire.
 */
function shortLivedWarning(log: FastifyBaseLogger, token: 'user' | 'client', firstProvider: string) {
  // Provider names come from the configuration: bounded by it.
  const told = new Set<string>()
  return (lifetime: number, refreshBefore: number, idp = firstProvider): void => {
    if (told.has(idp)) return
    told.add(idp)
    const code: LogCode = 'GATEHOUSE_TOKEN_LIFETIME_SHORT'
    const lifetimeSeconds = Math.round(lifetime / 1000)
    const refreshBeforeSeconds = refreshBefore / 1000
    const tokens = `${token === 'user' ? 'session' : 'client-credentials'} access tokens from ${idp}`
    log.warn(
      { code, idp, token, lifetimeSeconds, refreshBeforeSeconds },
      lifetime < 1000
        ? `${tokens} arrive with less than a second to live (expires_in): each request that needs one asks the identity provider again, and one that expired before it came is a 503`
        : `${tokens} live ${lifetimeSeconds} s, less than twice tokens.refreshBefore (${refreshBeforeSeconds} s): each is renewed halfway through its life instead`,
    )
  }
}
