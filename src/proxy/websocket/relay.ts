import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { WebSocket } from 'ws'

/**
 * Bytes a leg may hold unsent before the gateway stops reading the other
 * leg: 1 MiB is many typical messages, so a steady stream never stalls on
 * it, and small beside the per-socket memory a hostile upstream or a stalled
 * browser could otherwise pile up without bound.
 */
export const HIGH_WATER_MARK = 1024 * 1024 // 1 MiB

/**
 * Frames (messages, pings, pongs) a leg may hold unsent before the gateway
 * stops reading the other leg, however small they are. A queued frame
 * costs some 380 bytes of heap towards a browser (its payload's Buffer,
 * `ws`'s header Buffer, two entries in the socket's write queue) and 220
 * towards an upstream (one masked write), whatever its size: held to
 * HIGH_WATER_MARK alone, an upstream's 1-byte messages to a browser that
 * does not read queued 350,000 of them, 113 MiB, on one socket. 4,096
 * frames cost at most 1.5 MiB, and are HIGH_WATER_MARK's worth of 256-byte
 * messages, so a stream of larger ones pauses on bytes as before. A reader
 * that keeps up held at most 1,000 frames of a flood of 64-byte messages,
 * relayed as fast with this bound as with 1,024 or none (ws 8.23, Node
 * 24). `ws` parses a read to its end after a pause: up to 64 KiB more
 * arrive, 21,845 frames of 1-byte messages from an upstream.
 */
export const FRAME_HIGH_WATER_MARK = 4096

/**
 * What may still reach a leg after the relay stopped reading the other,
 * beyond HIGH_WATER_MARK and the message that crossed it: the rest of one
 * TCP read (64 KiB) and what `ws` had queued to parse (16 KiB). Plain
 * messages never come near it. Compressed ones can: a read of 64 KiB of
 * deflated zeros inflates a thousandfold, message by message, each within
 * `maxMessage`, before the pause takes effect. Past this much the sender is
 * outrunning flow control, and the socket is closed as for a message too big.
 */
const AFTER_PAUSE = 1024 * 1024 // 1 MiB

/** Closes both legs of a socket with `code` (see `SocketPair.close`). */
export type SocketCloser = (code: number, reason: string) => void

/** Which side of the gateway a leg faces. */
export type Leg = 'browser' | 'upstream'

/** Why the gateway closed a socket of its own accord. */
export type BrokenBound = 'message_too_large' | 'dead_peer' | 'protocol_error'

/**
 * Beats in a row without a sign of life that make a leg dead: one could be
 * a single stall of the gateway's event loop, two are a peer that is gone.
 */
export const DEAD_AFTER = 2

/** RFC 6455 §7.4.1: "a message that is too big for it to process". */
export const CLOSE_TOO_BIG = 1009

/** How the other leg is closed when one fails: code, reason, and the bound counted. */
type Failure = readonly [code: number, reason: string, bound: BrokenBound]

const TOO_BIG: Failure = [CLOSE_TOO_BIG, 'message too big', 'message_too_large']

/** RFC 6455 §7.4.1: "an endpoint is terminating the connection due to a protocol error". */
const PROTOCOL_ERROR: Failure = [1002, 'protocol error', 'protocol_error']

/**
 * The close code `ws` fails a leg with, by its error code, to pass on to
 * the other leg (PROTOCOL_ERROR for the rest).
 */
const FAILURES: Readonly<Record<string, Failure>> = {
  WS_ERR_INVALID_UTF8: [1007, 'invalid payload data', 'protocol_error'],
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: TOO_BIG,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: TOO_BIG,
  WS_ERR_TOO_MANY_BUFFERED_PARTS: [1008, 'too many fragments', 'protocol_error'],
}

/**
 * What the live leg is told when the other's peer is found dead: the
 * browser went away (RFC 6455 §7.4.1's 1001), or the upstream stopped
 * answering (1014 "Bad Gateway" in the IANA close code registry).
 */
const PEER_GONE: Readonly<Record<Leg, readonly [number, string]>> = {
  browser: [1001, 'browser went away'],
  upstream: [1014, 'upstream unreachable'],
}

export interface SocketPairOptions {
  /** Largest message either leg may send, bytes; `ws` enforces it on each leg as it reads. */
  readonly maxMessage: number
  readonly log: FastifyBaseLogger
  /** The gateway is closing the pair because `leg`'s peer broke a bound. */
  readonly onBroken?: (leg: Leg, bound: BrokenBound) => void
}

interface LegState {
  readonly name: Leg
  readonly socket: WebSocket
  /** A frame came from this leg's peer since the last beat. */
  heard: boolean
  /** Beats in a row without a sign of life. */
  quiet: number
  /** Messages this leg has handed to the kernel, and how many it had at the last beat. */
  taken: number
  takenAtBeat: number
  /** Its peer broke the protocol or sent a message too big: the leg is closing and is never read again. */
  failed: boolean
  /** Frames (messages, pings, pongs) relayed to this leg that `ws` has not yet written. */
  unsent: number
}

/**
 * One proxied WebSocket: the browser's leg and the upstream's, relayed both
 * ways with flow control, and each leg held to the route's bounds.
 *
 * - Messages: `ws` reads at most `maxMessage` per message (after
 *   inflation) on either leg and closes a leg that sends more with 1009;
 *   the other leg is closed with 1009 too.
 * - Liveness: `beat()` pings each leg with a token of the pair's own, and
 *   drops a leg whose peer has neither sent a frame nor taken one of ours
 *   for two beats in a row: within two to three ping intervals of its last
 *   sign of life. A leg the relay is not reading is spared: its pong may be
 *   waiting behind what it sent. A frame still arriving is no sign of
 *   life (no pong can come until it ends), so one dribbled in slowly does
 *   not keep its leg open.
 */
export class SocketPair {
  readonly #browser: LegState
  readonly #upstream: LegState
  readonly #options: SocketPairOptions
  /** The payload of the gateway's own pings, so their pongs are not relayed. */
  readonly #token = randomBytes(8)
  readonly #ceiling: number
  #broken = false

  constructor(browser: WebSocket, upstream: WebSocket, options: SocketPairOptions) {
    this.#options = options
    this.#ceiling = HIGH_WATER_MARK + options.maxMessage + AFTER_PAUSE
    this.#browser = leg('browser', browser)
    this.#upstream = leg('upstream', upstream)
    this.#relay(this.#browser, this.#upstream)
    this.#relay(this.#upstream, this.#browser)
  }

  /** Both legs, the browser's first. */
  get legs(): readonly [WebSocket, WebSocket] {
    return [this.#browser.socket, this.#upstream.socket]
  }

  /**
   * The gateway ends the socket of its own accord (its session ended, the
   * gateway is going away): both legs are told `code` at once, so the
   * upstream hears why whether or not the browser answers.
   */
  close(code: number, reason: string): void {
    for (const socket of this.legs) if (socket.readyState === WebSocket.OPEN) closeLeg(socket, code, reason)
  }

  /** One heartbeat: drops a dead leg, else pings both. Called every `pingInterval`. */
  beat(): void {
    for (const leg of [this.#browser, this.#upstream]) {
      const { socket } = leg
      if (socket.readyState !== WebSocket.OPEN) continue
      const alive = leg.heard || socket.isPaused || leg.taken !== leg.takenAtBeat
      leg.quiet = alive ? 0 : leg.quiet + 1
      if (leg.quiet >= DEAD_AFTER) {
        this.#dead(leg)
        return
      }
      leg.heard = false
      leg.takenAtBeat = leg.taken
      socket.ping(this.#token)
    }
  }

  /**
   * Relays `from`'s frames to `to`, reading `from` only while `to` holds
   * less than HIGH_WATER_MARK bytes and FRAME_HIGH_WATER_MARK frames
   * unsent: TCP's flow control then reaches the peer of `from`, which
   * stalls instead of the gateway buffering for it.
   */
  #relay(from: LegState, to: LegState): void {
    const source = from.socket
    const target = to.socket
    // `ws` calls back once a frame is written, or failed with its socket:
    // for pings and pongs too, or a leg they paused would not be read again.
    const written = () => {
      to.unsent--
      // A `to` that is closing sends nothing more: `from` is read again so
      // its own close handshake completes.
      if (
        source.isPaused &&
        !from.failed &&
        (target.readyState !== WebSocket.OPEN ||
          (target.bufferedAmount < HIGH_WATER_MARK && to.unsent < FRAME_HIGH_WATER_MARK))
      )
        source.resume()
    }
    const messageWritten = (err?: Error | null) => {
      if (!err) to.taken++
      written()
    }
    // RFC 6455 §5.5.1: a leg the gateway is closing is read for its peer's
    // close frame; the data its peer sends meanwhile goes nowhere.
    const open = () => source.readyState === WebSocket.OPEN && target.readyState === WebSocket.OPEN
    source.on('message', (data, binary) => {
      from.heard = true
      if (!open()) return
      to.unsent++
      target.send(data, { binary }, messageWritten)
      this.#throttle(from, to)
    })
    // Pings and pongs of the peers travel end to end (both legs): each
    // side's liveness check measures the other side, not the gateway.
    source.on('ping', (data) => {
      from.heard = true
      if (!open()) return
      to.unsent++
      target.ping(data, undefined, written)
      this.#throttle(from, to)
    })
    source.on('pong', (data) => {
      from.heard = true
      if (data.equals(this.#token) || !open()) return
      to.unsent++
      target.pong(data, undefined, written)
      this.#throttle(from, to)
    })
    source.on('error', (err: Error & { code?: string }) => {
      if (err.code?.startsWith('WS_ERR_')) this.#failed(from, to, err.code)
      this.#options.log.debug({ leg: from.name, err }, 'websocket error')
    })
    // A failed leg is not read, so it would not see its peer hang up
    // before its grace runs out: it goes once the other leg has closed.
    source.on('close', (code, reason) => (to.failed ? target.terminate() : closeLike(target, code, reason)))
  }

  /**
   * `from`'s peer broke the protocol or a bound (a message too big, an
   * unknown opcode, bad UTF-8). `ws` has sent the close code and a FIN on
   * `from` and stopped parsing it, but reads on, throwing the bytes away,
   * until the peer hangs up or its close timer (30 s) fires: a peer that
   * ignores the FIN fed the gateway megabytes of garbage a second. RFC
   * 6455 §7.1.7 lets a failed connection go unread, so it is paused, after
   * `ws`'s own resume (a `nextTick`): the rest stays in TCP's buffers and
   * at the peer. The other leg is closed with the same code now; no close
   * frame from `from`'s peer will be read to pass on.
   */
  #failed(from: LegState, to: LegState, code: string): void {
    from.failed = true
    setImmediate(() => from.socket.pause())
    this.#broke(from, to, FAILURES[code] ?? PROTOCOL_ERROR)
  }

  #throttle(from: LegState, to: LegState): void {
    const buffered = to.socket.bufferedAmount
    if (buffered >= HIGH_WATER_MARK || to.unsent >= FRAME_HIGH_WATER_MARK) from.socket.pause()
    // A sender that outran flow control is dropped without its closing
    // handshake: reading on for its close frame would inflate all it has
    // queued, to throw it away.
    if (buffered > this.#ceiling) this.#broke(from, to, TOO_BIG)
  }

  #dead(leg: LegState): void {
    const other = leg === this.#browser ? this.#upstream : this.#browser
    const [code, reason] = PEER_GONE[leg.name]
    this.#broke(leg, other, [code, reason, 'dead_peer'])
  }

  /**
   * The pair ends because `from`'s peer broke a bound: counted once, the
   * other leg closed with `failure`'s code first (`from`'s 1006 would
   * otherwise drop it as abruptly), then `from` dropped unless `ws` is
   * already closing it.
   */
  #broke(from: LegState, to: LegState, [code, reason, bound]: Failure): void {
    if (this.#broken) return
    this.#broken = true
    this.#options.onBroken?.(from.name, bound)
    if (to.socket.readyState === WebSocket.OPEN) closeLeg(to.socket, code, reason)
    if (from.socket.readyState === WebSocket.OPEN) from.socket.terminate()
  }
}

function leg(name: Leg, socket: WebSocket): LegState {
  return { name, socket, heard: true, quiet: 0, taken: 0, takenAtBeat: 0, failed: false, unsent: 0 }
}

/**
 * Starts `socket`'s closing handshake. The relay may have paused it; its
 * peer's close frame must still be read (RFC 6455 §5.5.1), or the handshake
 * ends only when its grace runs out (GatewaySocket), as a 1006.
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
