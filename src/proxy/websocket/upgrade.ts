import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { RouteConfig } from '../../config/types.js'
import { gatehouseError } from '../../errors.js'
import { upgradeOriginCheck } from '../../guards/csrf.js'
import { type GuardDeps, routeGuard } from '../guard.js'
import type { headerRewriter } from '../request-headers.js'

/**
 * True when Node handed this request over as an upgrade, or it asks for a
 * WebSocket. Node raises `upgrade` only while some route proxies WebSockets;
 * the header test refuses the same request whether or not one does.
 */
export function wantsUpgrade(request: FastifyRequest): boolean {
  if (isUpgrade(request.raw)) return true
  const upgrade = request.headers.upgrade
  return upgrade !== undefined && /\bwebsocket\b/i.test(upgrade)
}

/** Node's own verdict (`message.upgrade`): it raised `upgrade` and the socket is the proxy's to take. */
export function isUpgrade(request: IncomingMessage): boolean {
  return (request as IncomingMessage & { upgrade?: boolean }).upgrade === true
}

/**
 * onRequest of a route without `websocket: true`. Refused rather than served
 * as a plain GET: the client asked for a socket, and the upstream's 200
 * would reach it as a failed handshake it cannot tell from an outage.
 */
export function refuseUpgrade(
  request: FastifyRequest,
  _reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  if (wantsUpgrade(request)) done(gatehouseError('GATEHOUSE_ERR_WEBSOCKET_NOT_ENABLED'))
  else done()
}

/**
 * The preHandler of a `websocket: true` route: an upgrade has the route's
 * guard with the Origin check in place of the anti-forgery header, which a
 * browser cannot send on a WebSocket; any other request has the plain guard.
 */
export function upgradeAwareGuard(route: RouteConfig, deps: GuardDeps) {
  const guard = routeGuard(route, deps)
  const upgradeGuard = routeGuard(route, deps, upgradeOriginCheck(deps.config))
  return function guardUpgrade(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    if (isUpgrade(request.raw)) upgradeGuard(request, reply, done)
    else guard(request, reply, done)
  }
}

/**
 * The headers of the upgrade to the upstream: the route's HTTP rewrite
 * (our cookies out, the route's token in, spoofable headers dropped), less
 * the client's handshake headers. The gateway's leg is a handshake of its
 * own: `ws` sets its key, version and extensions (an extension the browser
 * offered would be one the gateway never negotiated), and the bridge offers
 * the browser's subprotocols once it has checked them.
 */
export function upgradeHeaders(rewrite: ReturnType<typeof headerRewriter>) {
  return function rewriteUpgrade(request: FastifyRequest): IncomingHttpHeaders {
    const out = rewrite(request, request.headers)
    for (const name in out) if (name.startsWith('sec-websocket-')) delete out[name]
    return out
  }
}
