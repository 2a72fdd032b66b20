import type { ServerResponse } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import { type RepeatedLines, repeatedField } from '../repeated-lines.js'

function cutOff(stall: SendStall): void {
  stall.cutOff()
}

/**
 * `server.sendTimeout` for one answer: armed while the browser's socket is
 * full and the upstream is paused for it. A browser that stops reading
 * would hold the upstream's connection (one of the route's pool) and the
 * exchange, which keeps a reloaded config's app alive, for ever: undici
 * counts no time while paused, and Node's timeouts cover only the request.
 * Past `sendTimeout` with no room made in the socket, as nginx's
 * `send_timeout`, the connection is closed, which aborts the upstream call
 * (the exchange's `close` listener). Made only for an answer that stalls.
 */
export class SendStall {
  readonly #res: ServerResponse
  readonly #timeout: number
  readonly #log: FastifyBaseLogger
  readonly #lines: RepeatedLines
  #timer: NodeJS.Timeout | undefined
  /** A `drain` listener of ours is on the response. */
  #awaitingDrain = false

  /** `lines`: the route's failure lines; a client can stall answers at will, so its line is written once a minute. */
  constructor(res: ServerResponse, timeout: number, log: FastifyBaseLogger, lines: RepeatedLines) {
    this.#res = res
    this.#timeout = timeout
    this.#log = log
    this.#lines = lines
  }

  /** The browser's socket is full: the clock runs, unless it already does. */
  arm(): void {
    if (this.#timer) return
    this.#timer = setTimeout(cutOff, this.#timeout, this)
    // The socket drains once the browser reads: Fastify's send may be past
    // the last of the body (`read` is not called again) when it does.
    if (this.#awaitingDrain) return
    this.#awaitingDrain = true
    this.#res.once('drain', () => {
      this.#awaitingDrain = false
      this.taken()
    })
  }

  /** The browser took some of the answer, or its connection closed. */
  taken(): void {
    if (this.#timer === undefined) return
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** `sendTimeout` passed with the browser taking nothing. */
  cutOff(): void {
    this.#timer = undefined
    const res = this.#res
    if (res.destroyed || res.writableFinished) return
    const held = this.#lines.admit('send-stall')
    if (held !== undefined)
      this.#log.warn(
        { sendTimeout: this.#timeout, ...repeatedField(held) },
        'browser took none of the answer within server.sendTimeout; connection closed',
      )
    res.destroy()
  }
}
