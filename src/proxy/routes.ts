import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { FrontendConfig, GatehouseConfig } from '../config/types.js'
import type { HeldKeys } from '../dpop/held-keys.js'
import { DpopNonces } from '../dpop/nonces.js'
import { UpstreamProofs } from '../dpop/upstream.js'
import { sendContinue } from '../guards/expect-continue.js'
import { REPEATED_LINE_INTERVAL, RepeatedLines } from '../repeated-lines.js'
import { formerLoginCookieName, loginCookiePrefix } from '../session/cookies.js'
import type { CookieNamesHad } from './cookie-names-had.js'
import { shortcutPlainTargets } from './destination.js'
import { sendWithProof } from './dpop-proof.js'
import { Forward, type ForwardOptions } from './forward.js'
import { type GuardDeps, routeGuard } from './guard.js'
import { allowedMethods } from './methods.js'
import { OwnCookies } from './own-cookies.js'
import { ambiguousPathRefusal } from './path-check.js'
import { headerRewriter } from './request-headers.js'
import { ResponseHygiene } from './response-headers.js'
import { streamSession } from './stream-session.js'
import { tokenRetry, upgradeTokenReplacer } from './token-retry.js'
import { ownDeadline } from './upstream-deadline.js'
import { dpopProofRefused, type UpstreamErrorObserver } from './upstream-errors.js'
import { upstreamPool } from './upstream-pool.js'
import {
  type DrainEnd,
  routeSockets,
  type UpgradeProof,
  type UpgradeToken,
  type WebSocketObserver,
} from './websocket/bridge.js'
import { SocketLimits } from './websocket/limits.js'
import {
  isUpgrade,
  refuseUpgrade,
  routeUpgrades,
  upgradeAwareGuard,
  upgradeHeaders,
} from './websocket/upgrade.js'
import { RECHECK_INTERVAL } from './websocket/watch.js'

/** What the proxy reads of the config: the routes, and the limits and names they share. */
export type ProxyConfig = Pick<GatehouseConfig, 'routes'> & {
  readonly server: Pick<
    GatehouseConfig['server'],
    'maxWebSockets' | 'trustProxy' | 'publicUrl' | 'sendTimeout'
  >
  readonly session: Pick<GatehouseConfig['session'], 'cookieName' | 'maxWebSockets'>
  /** Every frontend's cookies are the gateway's own, whichever frontend these routes are of. */
  readonly frontends?: readonly Pick<FrontendConfig, 'cookieName'>[]
  /**
   * Paths another frontend on these routes' host serves: a path an upstream
   * reads as under one of them is refused, as a deeper route's is.
   */
  readonly neighbours?: readonly string[]
}

export interface ProxyRouteHooks {
  /** Counts upstream failures by kind, for metrics. */
  readonly onUpstreamError?: UpstreamErrorObserver
  /** True while the gateway drains: answers then carry `Connection: close`. */
  readonly draining?: () => boolean
  /** Counts replays after an upstream refused a token (401 `invalid_token`), for metrics. */
  readonly onTokenRetry?: (route: string) => void
  /** Counts upstream `Set-Cookie`s dropped because they named a gateway cookie. */
  readonly onCookiesDropped?: (route: string, count: number) => void
  /** Clock of the sessions, epoch ms: the WebSocket session checks read with it. */
  readonly now?: () => number
  /** How often open WebSockets, and answers still streaming, re-check their session, ms (tests shorten it). */
  readonly websocketRecheck?: number
  /** Counts WebSockets refused, closed for a broken bound, and open. */
  readonly websocket?: WebSocketObserver
  /** The instance's WebSocket counts, when they must outlive these routes (a config reload). */
  readonly limits?: SocketLimits
  /** Where these routes' DPoP signers are kept track of, so that a session's end drops its key's. */
  readonly heldKeys?: HeldKeys
  /** The DPoP upstreams' nonces, when they must outlive these routes (a config reload); else their own. */
  readonly upstreamNonces?: DpopNonces
  /** When a shutdown's drain runs out: WebSockets still closing then are dropped. */
  readonly drain?: DrainEnd
  /** The cookie names of every config the process has run, when they must outlive these routes (a config reload). */
  readonly cookiesHad?: CookieNamesHad
}

/**
 * One encapsulated scope per route, each with its own @fastify/http-proxy
 * and undici pool, and its guard as a scope-level preHandler so it runs
 * before the proxy handler and never leaks to sibling routes.
 */
export async function registerProxyRoutes(
  app: FastifyInstance,
  config: ProxyConfig,
  deps: GuardDeps,
  hooks: ProxyRouteHooks = {},
) {
  // No upstream sees or sets a gateway cookie: not this frontend's, nor another's.
  const named = config.frontends?.map((f) => ({ session: f })) ?? [config]
  const current = {
    names: named.flatMap((c) => [c.session.cookieName, formerLoginCookieName(c)]),
    starts: named.map(loginCookiePrefix),
  }
  // Nor one an earlier config named: the browsers still hold it (cookie-names-had.ts).
  const { names, starts } = hooks.cookiesHad?.note(current) ?? current
  const own = new OwnCookies(names, starts)
  const draining = hooks.draining ?? (() => false)
  // Node raises `upgrade` only while a listener exists: without a
  // WebSocket route, an upgrade is an ordinary request that refuseUpgrade
  // answers.
  if (config.routes.some((route) => route.websocket)) routeUpgrades(app, hooks.websocket?.unserved)
  const limits = hooks.limits ?? new SocketLimits(config.server.maxWebSockets, config.session.maxWebSockets)
  // The upstreams' nonces apart from the IdP's, though they share an origin (RFC 9449 §9).
  const proofs = deps.dpop
    ? new UpstreamProofs(hooks.upstreamNonces ?? new DpopNonces(), hooks.now)
    : undefined
  if (proofs && hooks.heldKeys) {
    const unkeep = hooks.heldKeys.keep(proofs)
    app.addHook('onClose', async () => unkeep())
  }
  const routePaths = [...config.routes.map((route) => route.path), ...(config.neighbours ?? [])]
  for (const route of config.routes) {
    await app.register(async function proxyRoute(scope) {
      // onRequest: the path is settled before the guard's preHandler
      // reads a session or attaches a token.
      scope.addHook('onRequest', ambiguousPathRefusal(route.path, routePaths))
      if (!route.websocket) scope.addHook('onRequest', refuseUpgrade)
      scope.addHook('preHandler', route.websocket ? upgradeAwareGuard(route, deps) : routeGuard(route, deps))
      // http-proxy passes every body through raw but text/plain, which
      // Fastify's own parser would read before the guard runs: decoded as
      // UTF-8 (other bytes upstream), outside the route's bodyLimit, and an
      // `Expect: 100-continue` client left waiting for a 100 never sent.
      scope.addContentTypeParser('text/plain', (_request, payload, done) => done(null, payload))
      // Our own Pool rather than options: we dispatch to it directly, and
      // http-proxy's reply-from, which we never call, then opens none. We
      // own its lifecycle.
      const pool = upstreamPool(route)
      scope.addHook('onClose', () => pool.close())
      const retry = tokenRetry(route, deps, () => hooks.onTokenRetry?.(route.path), proofs)
      const replaceUpgradeToken = route.websocket ? upgradeTokenReplacer(route, deps) : undefined
      const routeProofs = route.dpop ? proofs : undefined
      // As a proof's `htu` names it: the key its nonce is remembered by.
      const upstreamOrigin = new URL(route.upstream).origin
      const rewriteHeaders = headerRewriter({
        own,
        parseCookie: (header) => app.parseCookie(header),
        trustProxy: config.server.trustProxy,
        publicUrl: config.server.publicUrl,
        passHeaders: route.passHeaders,
      })
      const hygiene = new ResponseHygiene({
        route: route.path,
        own,
        allowClearSiteData: route.allowClearSiteData,
        allowNetworkErrorLogging: route.allowNetworkErrorLogging,
        allowStrictTransportSecurity: route.allowStrictTransportSecurity,
        allowInternalRedirect: route.allowInternalRedirect,
        allowServiceWorkerScope: route.allowServiceWorkerScope,
        onCookiesDropped: hooks.onCookiesDropped,
      })
      // Per route: an outage fails every call alike, and anyone may call a
      // route that needs no session, or upgrade on a path its upstream
      // refuses, at line rate (repeated-lines.ts).
      const failureLines = new RepeatedLines(REPEATED_LINE_INTERVAL, hooks.now ?? Date.now)
      const forward: ForwardOptions = {
        pool,
        route: route.path,
        prefix: route.path === '/' ? '' : route.path,
        rewritePrefix: route.rewritePath === '/' ? '' : route.rewritePath,
        upstreamOrigin,
        rewriteHeaders,
        hygiene,
        onUpstreamError: hooks.onUpstreamError,
        failureLines,
        draining,
        deadline: ownDeadline(route.timeout),
        sendTimeout: config.server.sendTimeout,
        session: streamSession(
          route,
          deps,
          hooks.websocketRecheck ?? RECHECK_INTERVAL,
          hooks.now ?? Date.now,
        ),
      }
      const bounds = route.websocket
      const bridge =
        bounds &&
        routeSockets(scope, {
          route,
          bounds,
          deps,
          limits,
          headers: upgradeHeaders(rewriteHeaders),
          now: hooks.now ?? Date.now,
          recheck: hooks.websocketRecheck,
          observer: hooks.websocket,
          onUpstreamError: hooks.onUpstreamError,
          failureLines,
          drain: hooks.drain,
        })
      /** An upgrade's token replacement (`UpgradeToken`), on a route that replaces refused tokens. */
      function upgradeToken(
        request: FastifyRequest,
        reply: FastifyReply,
        dest: string,
      ): UpgradeToken | undefined {
        const refused = request.upstreamToken
        const replace = replaceUpgradeToken
        if (replace === undefined || refused === null) return undefined
        return {
          replace: (then) => {
            replace(request, refused).then(
              (replacement) => {
                if (replacement === undefined) return then(false)
                hooks.onTokenRetry?.(route.path)
                request.upstreamToken = replacement
                // A DPoP proof names its token (RFC 9449 §4.3, `ath`): the new one needs its own.
                request.upstreamProof = null
                sendWithProof(routeProofs, route.upstream, request, reply, dest, () => then(true))
              },
              (err: unknown) => reply.send(err),
            )
          },
        }
      }
      // http-proxy has matched the route and vetted `dest` against
      // traversal by now, or, for a plain target, the path check has and
      // `shortcutPlainTargets` passes what http-proxy would have. An upgrade
      // goes to the route's WebSocket bridge; every other request takes the
      // one dispatch in forward.ts, which answers through Fastify's send
      // when an onSend hook has work, so a refused token is replayed on
      // every answer.
      function handler(request: FastifyRequest, reply: FastifyReply, dest: string): void {
        if (bridge && isUpgrade(request.raw)) {
          // The upgrade is a GET to the upstream's http(s) URL: its proof is for that.
          const open = bridge
          // Only an upgrade with a proof hears nonces: one without (no session
          // on an optional-user route, a session signed in without DPoP) has
          // no proof to put one in, as an HTTP request's `proofSent` says.
          const proof: UpgradeProof | undefined =
            routeProofs && request.upstreamDpopKey !== null && request.upstreamToken !== null
              ? {
                  remember: (headers) => routeProofs.remember(upstreamOrigin, headers),
                  reproof: (then) => {
                    request.upstreamProof = null
                    sendWithProof(routeProofs, route.upstream, request, reply, dest, then)
                  },
                  // What the proof named (src/dpop/upstream.ts): the URL as dialled, without its query.
                  refused: () => dpopProofRefused(request.method, `${upstreamOrigin}${dest || '/'}`),
                }
              : undefined
          const token = upgradeToken(request, reply, dest)
          sendWithProof(routeProofs, route.upstream, request, reply, dest, () =>
            open.open(request, reply, dest, proof, token),
          )
          return
        }
        sendContinue(request, reply)
        if (retry) retry(request, reply, forward, dest)
        else new Forward(request, reply, forward).dispatch(dest)
      }
      // The guard decides first; the handler then sends 100 Continue.
      // The root hook in methods.ts reads the route's methods from here.
      const routeConfig = { defersContinue: true, allowedMethods: allowedMethods(route) }
      shortcutPlainTargets(scope, forward, handler, (registered) => registered.config === routeConfig)
      const options: FastifyHttpProxyOptions = {
        upstream: route.upstream,
        prefix: forward.prefix,
        rewritePrefix: forward.rewritePrefix,
        disableRequestLogging: true,
        config: routeConfig,
        undici: pool,
        handler,
      }
      await scope.register(httpProxy, options)
    })
  }
}
