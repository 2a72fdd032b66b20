import { type IncomingHttpHeaders, type IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { WebSocket, WebSocketServer } from 'ws'
import type { RouteConfig } from '../config/types.js'
import { type ErrorCode, gatehouseError } from '../errors.js'

interface PendingUpgrade {
  readonly socket: Duplex
  readonly head: Buffer
}

/** Upgrades Node has handed over and Fastify is still routing, by their request. */
const pending = new WeakMap<IncomingMessage, PendingUpgrade>()

/**
 * Sends every upgrade through Fastify's router, so hooks, guards and route
 * handlers see it as a GET; a handler that refuses it answers on the socket
 * as on any connection. The socket stays with the request until a
 * `WebSocketBridge` takes it.
 */
export function routeUpgrades(app: FastifyInstance): void {
  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
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

/** RFC 9110 §5.6.2 token characters: a subprotocol name (RFC 6455 §4.1). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const KEY = /^[+/0-9A-Za-z]{22}==$/

/**
 * The browser's offered subprotocols in its order, or a reason to refuse
 * the upgrade: what `ws` would refuse, checked before the upstream is dialled.
 */
function browserHandshake(
  request: FastifyRequest,
): { readonly offered: readonly string[] } | { readonly problem: string } {
  const { headers } = request
  if (request.method !== 'GET') return { problem: 'A WebSocket upgrade must be a GET.' }
  if (headers.upgrade?.toLowerCase() !== 'websocket')
    return { problem: 'The Upgrade header must be "websocket".' }
  if (!KEY.test(headers['sec-websocket-key'] ?? ''))
    return { problem: 'Sec-WebSocket-Key is missing or invalid.' }
  if (headers['sec-websocket-version'] !== '13') return { problem: 'Sec-WebSocket-Version must be 13.' }
  const header = headers['sec-websocket-protocol']
  if (header === undefined) return { offered: [] }
  const offered = header.split(',').map((name) => name.trim())
  // RFC 6455 §4.1: non-empty tokens, each offered once.
  if (!offered.every((name) => TOKEN.test(name)) || new Set(offered).size !== offered.length)
    return { problem: 'Sec-WebSocket-Protocol must list distinct tokens, separated by commas.' }
  return { offered }
}

/** Why an upstream handshake failed, for the answer to the browser's upgrade. */
type HandshakeFailure = 'timeout' | 'unreachable' | 'refused'

export interface WebSocketBridgeOptions {
  readonly route: RouteConfig
  /** The headers of the upgrade to the upstream, with the route's token and without the browser's handshake. */
  readonly headers: (request: FastifyRequest) => IncomingHttpHeaders
  /** Each socket once both legs are open, with the request that opened it. */
  readonly opened: (socket: WebSocket, request: FastifyRequest) => void
  /** Counts a failed handshake with the upstream, as an HTTP call's failure is counted. */
  readonly onUpstreamError?: (kind: 'timeout' | 'unreachable') => void
  readonly log: FastifyBaseLogger
}

/**
 * Proxies one route's WebSockets, upstream first: the upstream's handshake
 * completes before the browser's is answered. RFC 6455 §4.2.2: the server
 * selects the subprotocol, and only the upstream knows which it speaks, so
 * it is offered exactly the browser's list and the browser is told its
 * choice, or none. An upstream that refuses the upgrade or is not there is
 * an HTTP error on the browser's upgrade, never an accepted socket that
 * closes at once.
 */
export class WebSocketBridge {
  readonly #options: WebSocketBridgeOptions
  readonly #upstreamOrigin: string
  readonly #selected = new WeakMap<IncomingMessage, string>()
  /** Upstream legs whose handshake is under way. */
  readonly #dialling = new Set<WebSocket>()
  readonly #server: WebSocketServer

  constructor(options: WebSocketBridgeOptions) {
    this.#options = options
    const origin = new URL(options.route.upstream).origin
    this.#upstreamOrigin = origin.replace(/^http/, 'ws')
    this.#server = new WebSocketServer({
      noServer: true,
      // Pings and pongs travel end to end (both legs): each side's liveness
      // check measures the other side, not the gateway.
      autoPong: false,
      handleProtocols: (_offered, request) => this.#selected.get(request) ?? false,
    })
  }

  /**
   * The upgrade on this route, its guard passed: dials the upstream at
   * `dest` with the browser's subprotocols, then completes the browser's
   * handshake with the upstream's choice.
   */
  open(request: FastifyRequest, reply: FastifyReply, dest: string): void {
    const upgrade = pending.get(request.raw)
    const handshake = browserHandshake(request)
    if (upgrade === undefined || 'problem' in handshake) {
      reply.send(
        gatehouseError(
          'GATEHOUSE_ERR_INVALID_UPGRADE',
          'problem' in handshake ? handshake.problem : undefined,
        ),
      )
      return
    }
    const { offered } = handshake
    const headers = this.#options.headers(request)
    if (offered.length > 0) headers['sec-websocket-protocol'] = offered.join(', ')
    const url = request.raw.url ?? ''
    const query = url.indexOf('?')
    const path = (dest || '/') + (query === -1 ? '' : url.slice(query))
    const target = new WebSocket(`${this.#upstreamOrigin}${path}`, [], { headers, autoPong: false })
    this.#dialling.add(target)
    let failure: HandshakeFailure | undefined
    let selected: string | undefined
    const timer = setTimeout(() => {
      failure = 'timeout'
      target.terminate()
    }, this.#options.route.timeout)
    target.on('error', (err: Error & { code?: string }) => {
      // System errors (ECONNREFUSED, ENOTFOUND, ECONNRESET) carry a code;
      // `ws`'s own handshake checks do not: then the upstream answered.
      if (this.#dialling.has(target)) failure ??= err.code === undefined ? 'refused' : 'unreachable'
      this.#options.log.debug({ route: this.#options.route.path, err }, 'websocket upstream error')
    })
    const onClose = () => {
      clearTimeout(timer)
      this.#dialling.delete(target)
      if (!upgrade.socket.destroyed) this.#refuse(reply, failure ?? 'refused')
    }
    target.once('close', onClose)
    target.once('upgrade', (response) => {
      // `ws` was given no subprotocols, and the header offering them is
      // ours: it fails an upstream that selects none, which RFC 6455 §4.1
      // leaves to the client (the browser) to decide. The upstream's choice
      // is taken out of `ws`'s sight and checked here instead.
      selected = response.headers['sec-websocket-protocol']
      delete response.headers['sec-websocket-protocol']
      // RFC 6455 §4.1: a subprotocol the client did not offer fails the connection.
      if (selected !== undefined && !offered.includes(selected)) target.terminate()
    })
    target.once('open', () => {
      clearTimeout(timer)
      this.#dialling.delete(target)
      target.off('close', onClose)
      // Held until the browser's leg is open to take them.
      target.pause()
      if (selected !== undefined) this.#selected.set(request.raw, selected)
      reply.hijack()
      let linked = false
      // `ws` answers a browser handshake it cannot complete itself, and
      // destroys the socket: the upstream's leg goes with it.
      const abandoned = () => linked || target.terminate()
      upgrade.socket.once('close', abandoned)
      this.#server.handleUpgrade(request.raw, upgrade.socket, upgrade.head, (source) => {
        linked = true
        upgrade.socket.off('close', abandoned)
        this.#link(source, target, request)
      })
    })
  }

  /** Closes every socket: the gateway is going away (RFC 6455 §7.4.1's 1001). */
  close(): void {
    for (const target of this.#dialling) target.terminate()
    for (const client of this.#server.clients) closeLeg(client, 1001, 'gateway shutting down')
    this.#server.close()
  }

  #refuse(reply: FastifyReply, failure: HandshakeFailure): void {
    const codes: Record<HandshakeFailure, ErrorCode> = {
      timeout: 'GATEHOUSE_ERR_UPSTREAM_TIMEOUT',
      unreachable: 'GATEHOUSE_ERR_UPSTREAM_UNREACHABLE',
      refused: 'GATEHOUSE_ERR_UPSTREAM_UPGRADE_REFUSED',
    }
    if (failure !== 'refused') this.#options.onUpstreamError?.(failure)
    reply.log.warn({ route: this.#options.route.path, failure }, 'websocket upstream handshake failed')
    reply.send(gatehouseError(codes[failure]))
  }

  #link(source: WebSocket, target: WebSocket, request: FastifyRequest): void {
    const log = this.#options.log
    relay(source, target)
    relay(target, source)
    source.on('ping', (data) => target.ping(data))
    target.on('ping', (data) => source.ping(data))
    source.on('pong', (data) => target.pong(data))
    target.on('pong', (data) => source.pong(data))
    source.on('close', (code, reason) => closeLike(target, code, reason))
    target.on('close', (code, reason) => closeLike(source, code, reason))
    source.on('error', (err) => log.debug({ err }, 'websocket browser error'))
    target.resume()
    this.#options.opened(source, request)
  }
}

/**
 * Bytes a leg may hold unsent before the gateway stops reading the other
 * leg: 1 MiB is many typical messages, so a steady stream never stalls on
 * it, and small beside the per-socket memory a hostile upstream or a stalled
 * browser could otherwise pile up without bound.
 */
export const HIGH_WATER_MARK = 1024 * 1024 // 1 MiB

/**
 * Relays `from`'s messages to `to`, reading `from` only while `to` holds
 * less than HIGH_WATER_MARK unsent: TCP's flow control then reaches the peer
 * of `from`, which stalls instead of the gateway buffering for it.
 */
function relay(from: WebSocket, to: WebSocket): void {
  const resumeIfDrained = () => {
    // A `to` that is closing sends nothing more: `from` is read again so
    // its own close handshake completes.
    if (from.isPaused && (to.readyState !== WebSocket.OPEN || to.bufferedAmount < HIGH_WATER_MARK))
      from.resume()
  }
  from.on('message', (data, binary) => {
    // RFC 6455 §5.5.1: a leg the gateway is closing is read for its peer's
    // close frame; the data its peer sends meanwhile goes nowhere.
    if (from.readyState !== WebSocket.OPEN || to.readyState !== WebSocket.OPEN) return
    to.send(data, { binary }, resumeIfDrained)
    if (to.bufferedAmount >= HIGH_WATER_MARK) from.pause()
  })
}

/**
 * Starts `socket`'s closing handshake. The relay may have paused it; its
 * peer's close frame must still be read (RFC 6455 §5.5.1), or the handshake
 * ends only when `ws`'s close timer destroys the socket, as a 1006.
 */
export function closeLeg(socket: WebSocket, code?: number, reason?: string | Buffer): void {
  socket.resume()
  socket.close(code, reason)
}

/**
 * Closes `socket` as its peer closed: the same code and reason, none when
 * the peer sent none (1005), and abruptly when the peer vanished (1006):
 * neither may be sent (RFC 6455 §7.4.1).
 */
function closeLike(socket: WebSocket, code: number, reason: Buffer): void {
  if (socket.readyState !== WebSocket.OPEN) return
  if (code === 1006) socket.terminate()
  else if (code === 1005) closeLeg(socket)
  else closeLeg(socket, code, reason)
}
