import { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { TLSSocket } from 'node:tls'
import { WebSocket } from 'ws'
import { DEAD_AFTER } from './relay.js'

/**
 * How long a leg's peer has to show it is still there once the leg is
 * closing: to take some of what is queued ahead of the gateway's close
 * frame, and, once that frame has been written, to answer it. A round trip
 * or two for a peer still reading. One that is not (a laptop asleep, a
 * frozen tab) was waited for 30 s (`ws`'s `closeTimeout` by default),
 * holding a shutdown's drain to its end and the socket's place under the
 * limits as long.
 */
export const CLOSE_GRACE = 2_000 // 2 s

/**
 * `ws`'s own close timer for the legs of a route that pings every
 * `pingInterval`: the bound on a closing handshake from its start, however
 * slowly a peer reads what was queued ahead of the close frame. As long as
 * an open leg may go without a sign of life, and the grace to answer.
 * CLOSE_GRACE measured from when the close frame was written (ClosingLeg)
 * ends every handshake of a peer that stops reading sooner.
 */
export function closeTimeout(pingInterval: number): number {
  return DEAD_AFTER * pingInterval + CLOSE_GRACE
}

const NOTHING = Buffer.alloc(0)

/**
 * A leg of a proxied WebSocket. `ws` starts its close timer when `close()`
 * is called, not when the close frame has been written: a frame queued
 * behind megabytes a peer was reading slowly ran out its time before the
 * peer could see it, and the peer was dropped (1006) as one that never
 * answers. Every close of a leg, the gateway's and its answer to a peer's
 * close frame (`ws` calls `close()` for that too), is held to CLOSE_GRACE
 * from when the close frame has been written instead (ClosingLeg), and to
 * `closeTimeout` (`ws`'s timer) in all.
 */
export class GatewaySocket extends WebSocket {
  #connection: Socket | undefined

  /**
   * The connection the leg runs on (Node's upgrade hands over a `Socket`,
   * or a `TLSSocket`), on which its close is watched.
   */
  runsOn(connection: Duplex): void {
    if (connection instanceof Socket) this.#connection = connection
  }

  override close(code?: number, data?: string | Buffer): void {
    const open = this.readyState === WebSocket.OPEN
    super.close(code, data)
    // From OPEN, `close()` either throws (a code it may not send) or leaves the leg CLOSING.
    if (open) new ClosingLeg(this, this.#connection)
  }
}

/**
 * A leg from the moment its close frame is queued: dropped once nothing
 * has gone either way on its (plain TCP) connection for one to two
 * CLOSE_GRACEs while the frame waits behind what its peer has not taken (a
 * peer that reads nothing: within two graces of the close), or once the
 * handshake has not completed within CLOSE_GRACE of the frame's being
 * written; `ws`'s close timer (`closeTimeout`) bounds the whole. The stall
 * is Node's idle timeout on the connection: a message is one write, which
 * `bufferedAmount` counts whole until the kernel has taken its last byte,
 * and Node alone sees the kernel take a part of it. It looks for that
 * progress only when its time is up, measured from the start of the write,
 * so the first time may pass on what the kernel took before the close.
 */
class ClosingLeg {
  readonly #socket: WebSocket
  readonly #connection: Socket | undefined
  #timer: NodeJS.Timeout | undefined
  #written = false

  constructor(socket: WebSocket, connection: Socket | undefined) {
    this.#socket = socket
    this.#connection = connection
    socket.once('close', () => this.#settle())
    if (socket.bufferedAmount === 0 || connection === undefined || !connection.writable) {
      this.#answer()
      return
    }
    // On a TLS connection (a wss:// upstream) Node sees none of the kernel's
    // taking a part of a write, nor a write completing until all queued
    // has gone: a reader taking a backlog slowly would look stalled, and
    // only the close timer bounds it.
    if (!(connection instanceof TLSSocket)) {
      connection.setTimeout(CLOSE_GRACE)
      connection.once('timeout', this.#stalled)
    }
    // The relay sends nothing on a closing leg, so `bufferedAmount` only
    // falls, to 0 once the close frame has been written. Its falling has no
    // event of its own: `drain` comes only after a write the socket refused
    // (16 KiB queued), and a TLS connection writes even a lone close frame
    // later. A write of nothing behind the frame completes once all before
    // it has, as writes complete in order.
    this.#mark()
  }

  #mark(): void {
    const connection = this.#connection
    if (connection?.writable) connection.write(NOTHING, this.#marked)
  }

  readonly #marked = (): void => {
    if (this.#written || this.#closed) return
    // With permessage-deflate, frames still being compressed are queued in
    // `ws`, not yet on the connection: marked again, behind them.
    if (this.#socket.bufferedAmount > 0) setImmediate(() => this.#mark())
    else this.#answer()
  }

  /** Nothing went either way on the connection for CLOSE_GRACE. */
  readonly #stalled = (): void => {
    // A timer that fires after the event loop was held up runs before the
    // I/O that waited meanwhile: the verdict waits for it, in the same turn.
    setImmediate(() => {
      if (!this.#written && !this.#closed) this.#socket.terminate()
    })
  }

  get #closed(): boolean {
    return this.#socket.readyState === WebSocket.CLOSED
  }

  /** The close frame has been written: its peer has CLOSE_GRACE to answer it. */
  #answer(): void {
    this.#settle()
    this.#written = true
    this.#timer = setTimeout(expire, CLOSE_GRACE, this)
  }

  #settle(): void {
    clearTimeout(this.#timer)
    this.#connection?.off('timeout', this.#stalled)
    this.#connection?.setTimeout(0)
  }

  /** The grace to answer has passed. */
  expire(): void {
    if (!this.#closed) this.#socket.terminate()
  }
}

function expire(leg: ClosingLeg): void {
  // As in #stalled: an answer that came while the loop was held up is read first.
  setImmediate(() => leg.expire())
}
