import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  ServerResponse,
} from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyServerFactory } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { refusedBehindAnAnswer } from '../proxy/websocket/pipelined.js'
import { connectionsCheckingInterval } from './instance.js'
import { inTurn } from './pipelined-requests.js'

/**
 * What a Fastify app needs to be mounted on a `GatewayListener`: it is
 * built with `serverFactory`, which hands over its request handler and
 * gets a server that never listens. Upgrade listeners (the WebSocket
 * bridge) and `clientError` handlers are added to that server, and the
 * listener passes those events on to it.
 */
export interface Mount {
  readonly serverFactory: FastifyServerFactory
  /** The app's request handler, once `fastify()` has called the factory. */
  readonly handler: () => RequestListener
}

/** A mount for one app; pass `serverFactory` to `fastify()` (through `buildGateway`). */
export function mount(): Mount {
  let handler: RequestListener | undefined
  return {
    serverFactory: (h) => {
      handler = inTurn(h as RequestListener)
      // Never listens: it carries the app's event listeners, and a request
      // a listener hands back (`emit('request')`) reaches the app.
      return createServer(handler)
    },
    handler: () => {
      if (handler === undefined) throw new Error('the app was not built with this mount')
      return handler
    },
  }
}

/** An HTTP exchange in flight: a node of its generation's list, unlinked when it closes. */
interface Exchange {
  readonly response: ServerResponse
  readonly generation: Generation
  prev: Exchange | undefined
  next: Exchange | undefined
}

const exchangeOf = Symbol('gatehouse.exchange')
type Tracked = ServerResponse & { [exchangeOf]?: Exchange | undefined }

/**
 * The `close` listener of every tracked response, one function for all:
 * the exchange is found on the response. A closure under `once` per
 * request cost a function, `once`'s wrapper and its state, and a
 * `removeListener` when it fired, about 400 bytes a request.
 */
function exchangeClosed(this: Tracked): void {
  const exchange = this[exchangeOf]
  if (exchange === undefined) return
  this[exchangeOf] = undefined
  exchange.generation.untrack(exchange)
}

/** One app on the listener, with what it still has in hand. */
class Generation {
  readonly app: FastifyInstance
  readonly handler: RequestListener
  /** Upgraded sockets dispatched to this app and not yet closed. */
  readonly sockets = new Set<Duplex>()
  /**
   * HTTP exchanges dispatched to this app and not yet answered, as a
   * linked list rather than a Set: a Set that every request enters and
   * leaves kept its responses alive past their end, so each young-space
   * collection copied and promoted about 5 MB of finished requests (4–5 ms
   * pauses, a p99 3 ms above the ceiling's, at 25,000 requests a second).
   * An unlinked node holds nothing.
   */
  #exchanges: Exchange | undefined
  #inFlight = 0
  #idle: (() => void) | undefined

  constructor(app: FastifyInstance, m: Mount) {
    this.app = app
    this.handler = m.handler()
  }

  get busy(): boolean {
    return this.#inFlight > 0 || this.sockets.size > 0
  }

  /** Counts `response` in flight until it closes. */
  track(response: ServerResponse): void {
    const exchange: Exchange = { response, generation: this, prev: undefined, next: this.#exchanges }
    if (this.#exchanges !== undefined) this.#exchanges.prev = exchange
    this.#exchanges = exchange
    this.#inFlight++
    ;(response as Tracked)[exchangeOf] = exchange
    response.on('close', exchangeClosed)
  }

  /** `exchange`'s response has closed: out of the list, and out of the count. */
  untrack(exchange: Exchange): void {
    if (exchange.prev !== undefined) exchange.prev.next = exchange.next
    else this.#exchanges = exchange.next
    if (exchange.next !== undefined) exchange.next.prev = exchange.prev
    exchange.prev = undefined
    exchange.next = undefined
    this.#inFlight--
    this.settled()
  }

  /** The responses in flight. */
  *responses(): Generator<ServerResponse> {
    for (let exchange = this.#exchanges; exchange !== undefined; exchange = exchange.next) {
      yield exchange.response
    }
  }

  /** Resolves once nothing dispatched to this app is in flight (`upgrades`: open sockets count). */
  whenIdle(upgrades: boolean): Promise<void> {
    const idle = () => this.#inFlight === 0 && (!upgrades || this.sockets.size === 0)
    if (idle()) return Promise.resolve()
    return new Promise((resolve) => {
      this.#idle = () => {
        if (!idle()) return
        this.#idle = undefined
        resolve()
      }
    })
  }

  settled(): void {
    this.#idle?.()
  }
}

/**
 * The one public listener, in front of a succession of gateway apps, each
 * built from one frozen config. Each new request, and each upgrade, goes
 * to the current app, and stays with it to its end: a reload swaps the
 * current app, and the one before keeps answering what it was given, its
 * WebSockets included, until it has nothing left, and is closed then. A
 * request never sees two configs; a keep-alive connection may, one per
 * request.
 *
 * The listener owns what Node fixes when the server is created (the
 * parser's timeouts and header size), so those settings need a restart
 * (`RESTART_SETTINGS`).
 */
export class GatewayListener {
  readonly server: Server
  #current: Generation
  readonly #retiring = new Set<Generation>()
  #draining: NodeJS.Timeout | undefined
  /** At the shutdown, this listener's apps whose close has not yet asked `closesLast`. */
  #unasked: Set<FastifyInstance> | undefined

  constructor(config: GatehouseConfig['server'], first: FastifyInstance, m: Mount) {
    this.#current = new Generation(first, m)
    this.server = createServer(
      {
        headersTimeout: config.headersTimeout,
        requestTimeout: config.requestTimeout,
        keepAliveTimeout: config.keepAliveTimeout,
        maxHeaderSize: config.maxHeaderSize,
        connectionsCheckingInterval: connectionsCheckingInterval(config),
      },
      (request, response) => this.#request(request, response),
    )
    this.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#upgrade(request, socket, head),
    )
    // RFC 9110 §10.1.1: the app decides when to send 100 Continue
    // (guards/expect-continue.ts listens for this on its own server).
    this.server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) =>
      this.#request(request, response, 'checkContinue'),
    )
    this.server.on('clientError', (err: Error, socket: Duplex) => {
      this.#current.app.server.emit('clientError', err, socket)
    })
  }

  /** The app new requests go to. */
  get app(): FastifyInstance {
    return this.#current.app
  }

  /** Apps replaced by a reload that still answer what they were given. */
  get retiring(): number {
    return this.#retiring.size
  }

  /**
   * Whether `app`, closing as the process shuts down, is the last of this
   * listener's apps to: the one serving and those a reload replaced each
   * close once their own requests are done, and a request on any of them
   * may still owe a revocation. An app a reload built and never put in
   * use is none of them. Asked once per app, as it closes.
   */
  closesLast(app: FastifyInstance): boolean {
    this.#unasked ??= new Set([this.#current, ...this.#retiring].map((gen) => gen.app))
    return this.#unasked.delete(app) && this.#unasked.size === 0
  }

  /** Listens; resolves with the URL, as `app.listen` would. */
  async listen(host: string, port: number): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    // A failed accept (EMFILE) must not take the process down.
    this.server.on('error', (err) => this.#current.app.log.warn({ err }, 'listener error'))
    const { address, port: bound } = this.server.address() as AddressInfo
    return `http://${address.includes(':') ? `[${address}]` : address}:${bound}`
  }

  /**
   * Makes `next` the app for every new request and upgrade, at once, when
   * the function returned is called. The app it replaces is closed once
   * its last exchange is answered and its last WebSocket closed; the
   * promise that function returns settles then. In two steps so that a
   * reload applies whole or not at all (reload.ts): this one throws,
   * changing nothing, when `next` was not built with `m`; the swap does
   * not throw.
   */
  prepareSwap(next: FastifyInstance, m: Mount): () => Promise<void> {
    const gen = new Generation(next, m)
    return () => {
      const old = this.#current
      this.#current = gen
      this.#retiring.add(old)
      return old
        .whenIdle(true)
        .then(() => old.app.close())
        .finally(() => this.#retiring.delete(old))
    }
  }

  /**
   * Shutdown: accepts no new connection, answers in flight carry
   * `Connection: close` and idle keep-alive sockets are closed as they go
   * idle, so it ends when the last exchange does, not when clients drop
   * their connections. Each app is closed once its exchanges are answered;
   * closing it closes its WebSockets (a going-away close frame).
   */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    this.server.closeIdleConnections()
    this.#draining = setInterval(() => this.server.closeIdleConnections(), 50)
    this.#draining.unref()
    const all = [this.#current, ...this.#retiring]
    for (const gen of all) for (const response of gen.responses()) keepNoAlive(response)
    await Promise.all(all.map((gen) => gen.whenIdle(false).then(() => gen.app.close())))
    await closed
    clearInterval(this.#draining)
  }

  #request(request: IncomingMessage, response: ServerResponse, event?: 'checkContinue'): void {
    const gen = this.#current
    gen.track(response)
    if (this.#draining) keepNoAlive(response)
    if (event === undefined) gen.handler(request, response)
    else if (gen.app.server.listenerCount(event) > 0) gen.app.server.emit(event, request, response)
    else {
      // What Node does for a server without a `checkContinue` listener.
      response.writeContinue()
      gen.handler(request, response)
    }
  }

  #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const gen = this.#current
    gen.sockets.add(socket)
    socket.once('close', () => {
      gen.sockets.delete(socket)
      gen.settled()
    })
    if (refusedBehindAnAnswer(socket)) {
      gen.app.observers.proxy.websocket?.unserved?.(request, socket)
      return
    }
    if (gen.app.server.listenerCount('upgrade') > 0) {
      gen.app.server.emit('upgrade', request, socket, head)
      return
    }
    // This config proxies no WebSocket: the upgrade is an ordinary request,
    // which the routes refuse, answered on its socket (Node raised
    // `upgrade` only because some earlier config wanted them).
    socket.on('error', () => socket.destroy())
    const response = new ServerResponse(request)
    response.assignSocket(socket as Socket)
    response.on('finish', () => socket.destroy())
    gen.handler(request, response)
  }
}

/** RFC 9112 §9.6: the answer ends the connection, so a draining server is not kept open by it. */
function keepNoAlive(response: ServerResponse): void {
  if (!response.headersSent) response.shouldKeepAlive = false
}
