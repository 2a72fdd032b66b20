import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { Pool } from 'undici'
import type { GatehouseConfig, RouteConfig } from '../config/types.js'
import { gatehouseError } from '../errors.js'
import { loginCookieName } from '../session/cookies.js'
import { BODY_TOO_LARGE } from './body-limit.js'
import { type GuardDeps, routeGuard } from './guard.js'
import { headerRewriter } from './headers.js'

/** reply-from error codes that mean the upstream was too slow, not absent. */
const timeoutCodes = new Set([
  'FST_REPLY_FROM_GATEWAY_TIMEOUT',
  'FST_REPLY_FROM_TIMEOUT',
  'FST_REPLY_FROM_HTTP_REQUEST_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
])

export type UpstreamErrorKind = 'timeout' | 'unreachable'

function upstreamErrorHandler(
  route: string,
  observe: ((route: string, kind: UpstreamErrorKind) => void) | undefined,
) {
  return function onUpstreamError(
    reply: { log: FastifyBaseLogger; send(payload: unknown): unknown },
    { error }: { error: Error & { code?: string } },
  ): void {
    const cause = error.cause as { code?: string } | undefined
    if (error.code === BODY_TOO_LARGE || cause?.code === BODY_TOO_LARGE) {
      reply.send(gatehouseError('GATEHOUSE_ERR_PAYLOAD_TOO_LARGE'))
      return
    }
    const kind: UpstreamErrorKind = timeoutCodes.has(error.code ?? '') ? 'timeout' : 'unreachable'
    observe?.(route, kind)
    reply.log.warn({ route, upstreamError: error.code ?? error.name }, 'upstream request failed')
    reply.send(
      gatehouseError(
        kind === 'timeout' ? 'GATEHOUSE_ERR_UPSTREAM_TIMEOUT' : 'GATEHOUSE_ERR_UPSTREAM_UNREACHABLE',
      ),
    )
  }
}

/**
 * One encapsulated scope per route, each with its own @fastify/http-proxy
 * and undici pool, and its guard as a scope-level preHandler so it runs
 * before the proxy handler and never leaks to sibling routes.
 */
export async function registerProxyRoutes(
  app: FastifyInstance,
  config: GatehouseConfig,
  deps: GuardDeps,
  onUpstreamError?: (route: string, kind: UpstreamErrorKind) => void,
) {
  const rewriteHeaders = headerRewriter(
    [config.session.cookieName, loginCookieName(config)],
    config.server.trustProxy,
  )
  for (const route of config.routes) {
    await app.register(async function proxyRoute(scope) {
      scope.addHook('preHandler', routeGuard(route, deps))
      // Our own Pool rather than options: reply-from then dispatches to it
      // directly instead of through an Agent's per-origin lookup. We own
      // its lifecycle, so we close it.
      const pool = new Pool(route.upstream, poolOptions(route))
      scope.addHook('onClose', () => pool.close())
      const options: FastifyHttpProxyOptions = {
        upstream: route.upstream,
        prefix: route.path === '/' ? '' : route.path,
        rewritePrefix: route.rewritePath === '/' ? '' : route.rewritePath,
        disableRequestLogging: true,
        undici: pool,
        replyOptions: {
          rewriteRequestHeaders: rewriteHeaders,
          onError: upstreamErrorHandler(route.path, onUpstreamError),
        },
      }
      await scope.register(httpProxy, options)
    })
  }
}

function poolOptions(route: RouteConfig): Pool.Options {
  return {
    // Keep-alive connections to each upstream; pipelining stays at 1
    // because upstreams rarely handle it well and head-of-line blocking
    // would turn one slow call into many.
    connections: 128,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: route.timeout,
    bodyTimeout: route.timeout,
    connect: { timeout: Math.min(route.timeout, 10_000) },
  }
}
