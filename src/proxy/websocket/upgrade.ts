import { type IncomingHttpHeaders, type IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { RouteConfig } from '../../config/types.js'
import { gatehouseError } from '../../errors.js'
import { upgradeOriginCheck } from '../../guards/csrf.js'
import { type GuardDeps, routeGuard, tokenOfSession } from '../guard.js'
import type { headerRewriter } from '../request-headers.js'
import { refusedBehindAnAnswer } from './pipelined.js'
import { deflateOfferTaken, offeredSubprotocols } from './ws-readers.js'

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
 * The preHandler of a `websocket: true` route: an upgrade that is no valid
 * handshake is refused (`browserHandshake`) before the session is read or a
 * token fetched; a valid one has the route's guard with the Origin check in
 * place of the anti-forgery header, which a browser cannot send on a
 * WebSocket. Any other request has the plain guard.
 */
export function upgradeAwareGuard(route: RouteConfig, deps: GuardDeps) {
  const guard = routeGuard(route, deps)
  // `csrf: false` spares plain requests the header (navigations to static
  // files cannot send it); it does not drop an upgrade's Origin check where
  // the session's cookie gets a token upstream. The browser sends that
  // cookie on a socket whichever site opens it, and cannot add a header
  // to a handshake, so Origin is all that tells the SPA from another site
  // (RFC 6455 §10.2; cross-site WebSocket hijacking). Kept rather than
  // refused at load: a route may rightly serve both navigations and sockets.
  const originChecked = route.csrf || tokenOfSession(route)
  const compression = route.websocket !== false && route.websocket.compression
  const upgradeGuard = routeGuard({ ...route, csrf: originChecked }, deps, upgradeOriginCheck(deps.config))
  return function guardUpgrade(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    if (!isUpgrade(request.raw)) return guard(request, reply, done)
    const handshake = browserHandshake(request, compression)
    if ('problem' in handshake) done(gatehouseError('GATEHOUSE_ERR_INVALID_UPGRADE', handshake.problem))
    else upgradeGuard(request, reply, done)
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

/** An upgrade Node handed over: its socket, and what the client sent past the request's head. */
export interface PendingUpgrade {
  readonly socket: Duplex
  readonly head: Buffer
}

/** Upgrades Node has handed over and Fastify is still routing, by their request. */
const pending = new WeakMap<IncomingMessage, PendingUpgrade>()

/** The socket and first bytes of an upgrade Node handed over, while Fastify routes it. */
export function pendingUpgrade(request: IncomingMessage): PendingUpgrade | undefined {
  return pending.get(request)
}

/** The apps (by their router, which every scope of an app shares) whose upgrades are routed already. */
const routing = new WeakSet<object>()

/**
 * Sends every upgrade through Fastify's router, so hooks, guards and route
 * handlers see it as a GET; a handler that refuses it answers on the socket
 * as on any connection. The socket stays with the request until a
 * `WebSocketBridge` takes it. `unserved` is told of an upgrade that cannot
 * be, which no hook sees.
 */
export function routeUpgrades(
  app: FastifyInstance,
  unserved?: (request: IncomingMessage, socket: Duplex) => void,
): void {
  // Once per server: each frontend's routes ask (`frontends[]`), and the
  // one router, whose constraints pick the frontend, serves them all.
  if (routing.has(app.routing)) return
  routing.add(app.routing)
  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (refusedBehindAnAnswer(socket)) {
      unserved?.(request, socket)
      return
    }
    pending.set(request, { socket, head })
    // Node drops its own error listener from an upgraded socket; a reset
    // while the guard reads the session must not reach the process.
    socket.on('error', () => socket.destroy())
    const response = new ServerResponse(request)
    response.assignSocket(socket as Socket)
    response.on('finish', () => socket.destroy())
    app.routing(request, response)
  })
}

const KEY = /^[+/0-9A-Za-z]{22}==$/

/**
 * The browser's offered subprotocols in its order, or a reason to refuse
 * the upgrade: what `ws` would refuse, checked before the upstream is
 * dialled. `compression`: the route negotiates permessage-deflate, so `ws`
 * reads the browser's extension offer too.
 */
export function browserHandshake(
  request: FastifyRequest,
  compression: boolean,
): { readonly offered: readonly string[] } | { readonly problem: string } {
  const { headers } = request
  if (request.method !== 'GET') return { problem: 'A WebSocket upgrade must be a GET.' }
  // RFC 9110 §7.8: Upgrade in an HTTP/1.0 request MUST be ignored (a 1.0
  // hop in front may pass on a Connection meant for itself), and RFC 6455
  // §4.1 asks for 1.1; Node raises `upgrade` for it all the same.
  const { httpVersionMajor: major, httpVersionMinor: minor } = request.raw
  if (major < 1 || (major === 1 && minor < 1))
    return { problem: 'A WebSocket upgrade must be an HTTP/1.1 request.' }
  // RFC 6455 §4.1: the handshake is a GET without a body. Node does not
  // read one: its bytes come with the socket as `head`, which `ws` would
  // read as the browser's first frames. Content-Length: 0 declares none.
  if (headers['transfer-encoding'] !== undefined || (headers['content-length'] ?? '0') !== '0')
    return { problem: 'A WebSocket upgrade must not carry a body (Content-Length or Transfer-Encoding).' }
  if (headers.upgrade?.toLowerCase() !== 'websocket')
    return { problem: 'The Upgrade header must be "websocket".' }
  if (!KEY.test(headers['sec-websocket-key'] ?? ''))
    return { problem: 'Sec-WebSocket-Key is missing or invalid.' }
  if (headers['sec-websocket-version'] !== '13') return { problem: 'Sec-WebSocket-Version must be 13.' }
  // `ws` reads the offer only where it may negotiate permessage-deflate,
  // and refuses one it cannot take after the upstream's handshake is done.
  const extensions = headers['sec-websocket-extensions']
  if (compression && extensions !== undefined && !deflateOfferTaken(extensions))
    return {
      problem:
        'Sec-WebSocket-Extensions must be a well-formed list whose permessage-deflate offers have only the parameters of RFC 7692, each once.',
    }
  const header = headers['sec-websocket-protocol']
  if (header === undefined) return { offered: [] }
  // RFC 6455 §4.1: non-empty tokens, each offered once, as `ws` reads the
  // list (spaces and tabs around them, not a no-break space).
  const offered = offeredSubprotocols(header)
  if (offered === undefined)
    return { problem: 'Sec-WebSocket-Protocol must list distinct tokens, separated by commas.' }
  return { offered }
}
