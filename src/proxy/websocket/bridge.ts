import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { type Server, WebSocket, WebSocketServer } from 'ws'
import type { RouteConfig, WebSocketRoute } from '../../config/types.js'
import { usableNonce } from '../../dpop/nonces.js'
import { challengesForNonce, refusesProof } from '../../dpop/upstream.js'
import { gatehouseError, loggedAlready } from '../../errors.js'
import { type RepeatedLines, repeatedField } from '../../repeated-lines.js'
import { tlsConnectOptions } from '../../tls/connect-options.js'
import { dialClosedHint, tlsFailureReason } from '../../tls/handshake-errors.js'
import { injectTraceContext, serverSpanEnder } from '../../tracing/spans.js'
import type { GuardDeps } from '../guard.js'
import { CHALLENGED_AGAIN, refusesToken, UNUSABLE_NONCE } from '../refusal-handlers.js'
import {
  answerUpstreamFailure,
  nonceUnanswered,
  notHttp,
  type UpstreamErrorKind,
  type UpstreamErrorObserver,
  upstreamErrorCode,
} from '../upstream-errors.js'
import { closeTimeout, GatewaySocket } from './closing.js'
import type { SocketLimit, SocketLimits, SocketPlace } from './limits.js'
import { type BrokenBound, closeLeg, type Leg, type SocketCloser, SocketPair } from './relay.js'
import { browserHandshake, type PendingUpgrade, pendingUpgrade } from './upgrade.js'
import { SocketWatch } from './watch.js'
import { DEFLATE } from './ws-readers.js'

/** Why an upstream handshake failed, for the answer to the browser's upgrade. */
type HandshakeFailure = UpstreamErrorKind | 'refused'

/** What the log says of a failed dial beside its kind (see upstream-errors.ts for HTTP's). */
interface FailureCause {
  readonly upstreamError: string
  readonly tls?: string
  readonly hint?: string
}

/**
 * An upgrade's DPoP proof, when its route has one: the nonces its answers
 * carry are remembered, a `use_dpop_nonce` challenge (RFC 9449 §9) is
 * answered once with a new proof that carries the nonce, and an
 * `invalid_dpop_proof` (§7.1) is the gateway's to answer, as an HTTP
 * request's are (token-retry.ts).
 */
export interface UpgradeProof {
  remember(headers: IncomingHttpHeaders): void
  /** Makes the upgrade's proof again, with the nonce just remembered, then calls `then`. */
  reproof(then: () => void): void
  /** The error of an upstream that refused the proof, naming what it named (`dpopProofRefused`). */
  refused(): Error
}

/**
 * An upgrade's token, when its route replays a request whose token the
 * upstream refused (`retryOnInvalidToken`): an upgrade answered 401
 * `invalid_token` (RFC 6750 §3.1: revoked, or the upstream's keys rotated)
 * is dialled once more with the session's new token, as an HTTP request is
 * replayed (token-retry.ts). Without it the refused token stayed in the
 * session, and every upgrade was a 502 until the token was due.
 */
export interface UpgradeToken {
  /**
   * Puts a new token (and its proof) on the upgrade, then calls
   * `then(true)`; `then(false)` when none replaces it (the route's
   * cool-down). A session found ended is sent as the upgrade's answer.
   */
  replace(then: (replaced: boolean) => void): void
}

/** The replays an upgrade has had: each kind at most once, in either order. */
interface Replays {
  readonly nonce: boolean
  readonly token: boolean
}

/** What the bridge reports for metrics. */
export interface WebSocketObserver {
  /** An upgrade refused by a limit. */
  refused?(route: string, limit: SocketLimit): void
  /** A socket the gateway closed because `leg`'s peer broke a bound. */
  broken?(route: string, leg: Leg, bound: BrokenBound): void
  /** A socket opened (+1) or closed (-1) on `route`. */
  open?(route: string, delta: 1 | -1): void
  /**
   * An upgrade never routed nor answered: pipelined behind an answer still
   * being written, its connection closes once that is (pipelined.ts).
   */
  unserved?(request: IncomingMessage, socket: Duplex): void
}

/**
 * `ws`'s close timer, on both legs (see `closeTimeout`). `ws` 8.23 reads
 * `closeTimeout`; @types/ws 8.18 does not declare it yet, so it is spread
 * in rather than written in the options.
 */
const closeTimer = (pingInterval: number): { readonly closeTimeout: number } => ({
  closeTimeout: closeTimeout(pingInterval),
})

export interface WebSocketBridgeOptions {
  readonly route: RouteConfig
  /** The route's bounds: largest message, compression, ping interval. */
  readonly bounds: WebSocketRoute
  /** The instance's socket count, shared by every route. */
  readonly limits: SocketLimits
  readonly observer?: WebSocketObserver
  /** The headers of the upgrade to the upstream, with the route's token and without the browser's handshake. */
  readonly headers: (request: FastifyRequest) => IncomingHttpHeaders
  /** The id of the session the upgrade's cookie opens, if any: whose sockets are counted. */
  readonly sessionIdOf: (request: FastifyRequest) => string | undefined
  /** Each socket once both legs are open, with the request that opened it and what closes both legs. */
  readonly opened: (socket: WebSocket, request: FastifyRequest, close: SocketCloser) => void
  /** Counts a failed handshake with the upstream, as an HTTP call's failure is counted. */
  readonly onUpstreamError?: (kind: UpstreamErrorKind) => void
  /** The route's failure lines, shared with its HTTP calls: each written once a minute per cause. */
  readonly failureLines: RepeatedLines
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
  readonly #server: Server<typeof GatewaySocket>
  readonly #pairs = new Set<SocketPair>()
  readonly #heartbeat: NodeJS.Timeout
  /** `close` has begun: a dial ended or refused now is the gateway's doing. */
  #closing = false

  constructor(options: WebSocketBridgeOptions) {
    this.#options = options
    const origin = new URL(options.route.upstream).origin
    this.#upstreamOrigin = origin.replace(/^http/, 'ws')
    const { maxMessage, compression, pingInterval } = options.bounds
    this.#server = new WebSocketServer({
      noServer: true,
      WebSocket: GatewaySocket,
      // Pings and pongs of the peers travel end to end (see SocketPair).
      autoPong: false,
      // `ws`'s own default is 100 MiB; a library default is not a limit.
      maxPayload: maxMessage,
      perMessageDeflate: compression ? DEFLATE : false,
      ...closeTimer(pingInterval),
      handleProtocols: (_offered, request) => this.#selected.get(request) ?? false,
    })
    this.#heartbeat = setInterval(() => {
      for (const pair of this.#pairs) pair.beat()
    }, pingInterval)
    this.#heartbeat.unref()
  }

  /**
   * The upgrade on this route, its guard passed: dials the upstream at
   * `dest` with the browser's subprotocols, then completes the browser's
   * handshake with the upstream's choice.
   */
  open(
    request: FastifyRequest,
    reply: FastifyReply,
    dest: string,
    proof?: UpgradeProof,
    token?: UpgradeToken,
  ): void {
    const upgrade = pendingUpgrade(request.raw)
    const handshake = browserHandshake(request, this.#options.bounds.compression)
    if (upgrade === undefined || 'problem' in handshake) {
      reply.send(
        gatehouseError(
          'GATEHOUSE_ERR_INVALID_UPGRADE',
          'problem' in handshake ? handshake.problem : undefined,
        ),
      )
      return
    }
    const place = this.#place(request)
    if (typeof place === 'string') {
      this.#options.observer?.refused?.(this.#options.route.path, place)
      reply.send(
        gatehouseError(
          place === 'session_limit'
            ? 'GATEHOUSE_ERR_TOO_MANY_WEBSOCKETS'
            : 'GATEHOUSE_ERR_WEBSOCKET_CAPACITY',
        ),
      )
      return
    }
    // Held until the browser's connection closes, however the upgrade ends:
    // refused, abandoned, or a socket that has run its course.
    if (upgrade.socket.destroyed) place.release()
    else upgrade.socket.once('close', () => place.release())
    const { offered } = handshake
    const url = request.raw.url ?? ''
    const query = url.indexOf('?')
    const path = (dest || '/') + (query === -1 ? '' : url.slice(query))
    const dial = (replays: Replays) =>
      this.#dial(request, reply, upgrade, offered, path, replays, dial, proof, token)
    dial({ nonce: false, token: false })
  }

  /** Dials the upstream for an upgrade whose place is held; `dial` dials it again, for a replay. */
  #dial(
    request: FastifyRequest,
    reply: FastifyReply,
    upgrade: PendingUpgrade,
    offered: readonly string[],
    path: string,
    replays: Replays,
    dial: (replays: Replays) => void,
    proof: UpgradeProof | undefined,
    token: UpgradeToken | undefined,
  ): void {
    // The browser left while a proof was being made (RSA signs on the
    // thread pool): an upstream leg dialled now would have no one to link to.
    if (upgrade.socket.destroyed) return
    // A replay decided on while the gateway began to close.
    if (this.#closing) {
      this.#refuse(reply, 'refused', undefined)
      return
    }
    // Read again for a replay: the proof in them is new.
    const headers = this.#options.headers(request)
    if (offered.length > 0) headers['sec-websocket-protocol'] = offered.join(', ')
    // The `ws` client is not undici: no instrumentation propagates for it.
    injectTraceContext(headers)
    const endServerSpan = serverSpanEnder()
    const { maxMessage, compression, pingInterval } = this.#options.bounds
    const target = new GatewaySocket(`${this.#upstreamOrigin}${path}`, [], {
      headers,
      autoPong: false,
      maxPayload: maxMessage,
      // `ws` offers permessage-deflate unless told not to: an upstream could
      // then send a megabyte of deflated zeros that inflates a thousandfold.
      perMessageDeflate: compression ? DEFLATE : false,
      ...closeTimer(pingInterval),
      ...tlsConnectOptions(this.#options.route.tls),
    })
    this.#dialling.add(target)
    let failure: HandshakeFailure | undefined
    /**
     * For the log, as an HTTP call's failure is logged: the failing error's
     * code (a TLS alert, ECONNREFUSED), a TLS failure's reason in words, or
     * what an unanswered close likely means.
     */
    let cause: FailureCause | undefined
    let selected: string | undefined
    const timer = setTimeout(() => {
      failure = 'timeout'
      target.terminate()
    }, this.#options.route.timeout)
    target.on('error', (err: Error & { code?: string }) => {
      // System errors (ECONNREFUSED, ENOTFOUND, ECONNRESET) carry a code;
      // `ws`'s own handshake checks do not: then the upstream answered. So
      // it did when node:http's parser refused the answer (an `HPE_*` code).
      if (!this.#dialling.has(target)) return
      const tls = tlsFailureReason(err)
      failure ??= err.code === undefined ? 'refused' : tls ? 'tls' : notHttp(err) ? 'invalid' : 'unreachable'
      if (cause === undefined && err.code !== undefined) {
        const hint = tls ? undefined : dialClosedHint(err)
        cause = { upstreamError: err.code, ...(tls ? { tls } : {}), ...(hint ? { hint } : {}) }
      }
      // Never `err` whole: node:http hangs the upstream's raw bytes, Set-Cookie
      // values and all, on a parser error (`rawPacket`). By name and code, as
      // the `err` serializer (server/logger.ts) writes them.
      const { name: type, code: errorCode } = err
      this.#options.log.debug(
        { route: this.#options.route.path, type, errorCode },
        'websocket upstream error',
      )
    })
    // Node does not read the browser's connection until its handshake is
    // answered, so a reset is all that says the browser left, and the dial
    // ends with it; `ws` likewise destroys a browser socket whose handshake
    // it cannot complete. An upstream leg that opened regardless had no one
    // to link to: it held the user's token outside the limits (the place
    // went back with the browser's socket), the heartbeat and the shutdown.
    const abandoned = () => target.terminate()
    upgrade.socket.once('close', abandoned)
    const onClose = () => {
      clearTimeout(timer)
      this.#dialling.delete(target)
      upgrade.socket.off('close', abandoned)
      if (!upgrade.socket.destroyed) this.#refuse(reply, failure ?? 'refused', cause)
    }
    target.once('close', onClose)
    // This leg ends quietly: the upgrade goes on with a replay, or is answered once one is decided on.
    const dropQuietly = () => {
      clearTimeout(timer)
      this.#dialling.delete(target)
      upgrade.socket.off('close', abandoned)
      target.off('close', onClose)
      target.terminate()
    }
    // With a listener here, `ws` leaves a refusal to us: it is ended below either way.
    target.once('unexpected-response', (_req, response) => {
      proof?.remember(response.headers)
      response.resume()
      const refusedFor = response.statusCode === 401 ? response.headers : undefined
      // RFC 9449 §7.1: the proof is the gateway's, not the browser's, and an
      // operator's to mend: the answer and warning of an HTTP request's (upstream-errors.ts).
      if (proof && refusedFor && refusesProof(refusedFor)) {
        dropQuietly()
        const { route, failureLines } = this.#options
        if (!upgrade.socket.destroyed) answerUpstreamFailure(reply, proof.refused(), route.path, failureLines)
        return
      }
      if (proof && refusedFor && challengesForNonce(refusedFor)) {
        dropQuietly()
        const usable = usableNonce(refusedFor['dpop-nonce'])
        if (usable && !replays.nonce) {
          proof.reproof(() => dial({ ...replays, nonce: true }))
          return
        }
        // A challenge not replayed is an API call's (refusal-handlers.ts):
        // 503 with Retry-After, the nonce remembered for the browser's next
        // try; a 502 "refused" told it the upstream would never take it.
        const { route, failureLines } = this.#options
        const unanswered = nonceUnanswered(usable ? CHALLENGED_AGAIN : UNUSABLE_NONCE)
        if (!upgrade.socket.destroyed) answerUpstreamFailure(reply, unanswered, route.path, failureLines)
        return
      }
      if (token && !replays.token && refusedFor && refusesToken(refusedFor['www-authenticate'])) {
        dropQuietly()
        token.replace((replaced) => {
          if (replaced) dial({ ...replays, token: true })
          else if (!upgrade.socket.destroyed) this.#refuse(reply, 'refused', undefined)
        })
        return
      }
      target.terminate()
    })
    target.once('upgrade', (response) => {
      target.runsOn(response.socket)
      // RFC 9449 §9: a server may send its next nonce with any answer.
      proof?.remember(response.headers)
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
      this.#server.handleUpgrade(request.raw, upgrade.socket, upgrade.head, (source) => {
        source.runsOn(upgrade.socket)
        endServerSpan?.(101)
        // The pair closes the upstream's leg with the browser's from now on.
        upgrade.socket.off('close', abandoned)
        this.#link(source, target, request)
      })
    })
  }

  /**
   * Closes every socket: the gateway is going away (RFC 6455 §7.4.1's
   * 1001), both legs told at once. Resolves once every leg has closed: a
   * peer that has not answered within CLOSE_GRACE of the close frame's
   * being written, or stopped taking what was queued ahead of it, is
   * dropped (GatewaySocket; RFC 6455 §7.1.1 leaves the TCP close to the
   * server after a reasonable wait). A peer that keeps the handshake from
   * completing otherwise (it sends, but reads nothing; a wss:// upstream
   * that stops reading) is dropped when `drain` runs out, if it does first.
   */
  async close(drain?: DrainEnd): Promise<void> {
    clearInterval(this.#heartbeat)
    this.#closing = true
    for (const target of this.#dialling) target.terminate()
    const legs = new Set<WebSocket>(this.#server.clients)
    for (const pair of this.#pairs) for (const leg of pair.legs) legs.add(leg)
    const closing = [...legs].filter((leg) => leg.readyState !== WebSocket.CLOSED)
    const ended = closing.map((leg) => new Promise((resolve) => leg.once('close', resolve)))
    for (const pair of this.#pairs) pair.close(1001, 'gateway shutting down')
    for (const leg of closing)
      if (leg.readyState === WebSocket.OPEN) closeLeg(leg, 1001, 'gateway shutting down')
    const cancel = drain?.onEnd(() => {
      for (const leg of closing) leg.terminate()
    })
    await Promise.all(ended)
    cancel?.()
    this.#server.close()
  }

  #refuse(reply: FastifyReply, failure: HandshakeFailure, cause: FailureCause | undefined): void {
    // The dial was ours to end: the upstream refused nothing, and another
    // instance can take the upgrade (Retry-After), where a 502 said the upstream failed.
    if (this.#closing) {
      reply.send(gatehouseError('GATEHOUSE_ERR_SHUTTING_DOWN'))
      return
    }
    if (failure !== 'refused') this.#options.onUpstreamError?.(failure)
    // An upstream's 404 to a path anyone may ask for is a refusal too.
    const held = this.#options.failureLines.admit(`upgrade ${failure} ${cause?.upstreamError ?? ''}`)
    if (held !== undefined)
      reply.log.warn(
        { route: this.#options.route.path, failure, ...cause, ...repeatedField(held) },
        'websocket upstream handshake failed',
      )
    reply.send(
      loggedAlready(
        gatehouseError(
          failure === 'refused' ? 'GATEHOUSE_ERR_UPSTREAM_UPGRADE_REFUSED' : upstreamErrorCode(failure),
        ),
      ),
    )
  }

  /** A place under the limits for this upgrade's socket, by the session its cookie names. */
  #place(request: FastifyRequest): SocketPlace | SocketLimit {
    return this.#options.limits.take(this.#options.sessionIdOf(request))
  }

  #link(source: WebSocket, target: WebSocket, request: FastifyRequest): void {
    const { route, observer } = this.#options
    const pair = new SocketPair(source, target, {
      maxMessage: this.#options.bounds.maxMessage,
      log: this.#options.log,
      onBroken: (leg, bound) => observer?.broken?.(route.path, leg, bound),
    })
    this.#pairs.add(pair)
    observer?.open?.(route.path, 1)
    source.once('close', () => {
      this.#pairs.delete(pair)
      observer?.open?.(route.path, -1)
    })
    target.resume()
    this.#options.opened(source, request, (code, reason) => pair.close(code, reason))
  }
}

export interface RouteSocketsOptions {
  readonly route: RouteConfig
  readonly bounds: WebSocketRoute
  readonly deps: GuardDeps
  /** The instance's socket count, shared by every route. */
  readonly limits: SocketLimits
  /** The route's upgrade headers (see `upgradeHeaders`). */
  readonly headers: (request: FastifyRequest) => IncomingHttpHeaders
  /** Clock of the sessions, epoch ms. */
  readonly now: () => number
  /** How often open sockets re-check their session, ms; default `RECHECK_INTERVAL`. */
  readonly recheck?: number | undefined
  readonly observer?: WebSocketObserver | undefined
  readonly onUpstreamError?: UpstreamErrorObserver | undefined
  readonly failureLines: RepeatedLines
  /** When a shutdown's drain runs out; absent, a close waits for every leg as long as it takes. */
  readonly drain?: DrainEnd | undefined
}

/** When a shutdown's drain runs out (server/drain-deadline.ts): `drop` is called then; the result cancels it. */
export interface DrainEnd {
  onEnd(drop: () => void): () => void
}

/**
 * The WebSockets of one `websocket: true` route: its bridge, and the watch
 * that closes a socket once its session ends. Both close with the route's
 * scope.
 */
export function routeSockets(scope: FastifyInstance, options: RouteSocketsOptions): WebSocketBridge {
  const { route, deps, recheck, observer, onUpstreamError } = options
  const watch = new SocketWatch(route, deps, {
    now: options.now,
    log: scope.log,
    ...(recheck === undefined ? {} : { interval: recheck }),
  })
  const bridge = new WebSocketBridge({
    route,
    bounds: options.bounds,
    limits: options.limits,
    ...(observer && { observer }),
    headers: options.headers,
    sessionIdOf: (request) => deps.sessions.refOf(request)?.id,
    opened: (socket, request, close) => watch.opened(socket, request, close),
    onUpstreamError: (kind) => onUpstreamError?.(route.path, kind),
    failureLines: options.failureLines,
    log: scope.log,
  })
  // preClose: open sockets would otherwise hold server.close() open. Begun
  // there and awaited on close, so the process exits only once the upstream
  // legs, which the server does not hold, are closed too. Fastify runs
  // each scope's hooks in turn: awaited in preClose, every route's grace
  // would come after the last's.
  let closing: Promise<void> | undefined
  scope.addHook('preClose', (done) => {
    closing = bridge.close(options.drain)
    done()
  })
  scope.addHook('onClose', async () => {
    watch.close()
    await closing
  })
  return bridge
}
