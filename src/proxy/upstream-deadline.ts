import type { IncomingMessage } from 'node:http'
import { type Dispatcher, errors } from 'undici'
import { needsOwnTimer } from '../undici-timers.js'

/**
 * The route timeout the gateway keeps with a timer of its own, or
 * `undefined` when undici's is precise enough for it (see undici-timers.ts).
 */
export function ownDeadline(timeout: number): number | undefined {
  return needsOwnTimer(timeout) ? timeout : undefined
}

/**
 * A route's timeout for one request, kept to the millisecond: the answer's
 * head within `ms` of the request being sent, then each chunk of its body
 * within `ms` of the last, as undici bounds them; it aborts the dispatch
 * with undici's own errors, so a timeout reads the same whichever timer
 * fired. One native timer, refreshed rather than re-armed; never a closure
 * per request.
 */
export class UpstreamDeadline {
  readonly #ms: number
  /** The browser's request, whose body may still be arriving. */
  readonly #client: IncomingMessage
  #controller: Dispatcher.DispatchController | undefined
  #timer: NodeJS.Timeout | undefined
  #answered = false

  constructor(ms: number, client: IncomingMessage) {
    this.#ms = ms
    this.#client = client
  }

  /** The request is on a connection to the upstream: its answer's head is due. */
  start(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    this.#answered = false
    if (this.#timer) this.#timer.refresh()
    else this.#timer = setTimeout(expire, this.#ms, this)
  }

  /** A head arrived (a final one when `final`), or a chunk of the body: the next is due. */
  heard(final: boolean): void {
    if (final) this.#answered = true
    this.#timer?.refresh()
  }

  /** The exchange is over, answered or failed. */
  stop(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** The timer fired: the upstream is late, unless the answer is paused or the request still uploading. */
  expire(): void {
    const controller = this.#controller
    const timer = this.#timer
    if (controller === undefined || timer === undefined || controller.aborted) return
    // undici counts no time while the answer is paused: the browser is
    // slow to read it, or a refused token is being replaced (token-retry.ts).
    if (controller.paused) {
      timer.refresh()
      return
    }
    if (!this.#answered && !this.#client.complete) {
      // undici starts the wait for the head once the request's body is
      // sent, not while the browser is still uploading it. Rare enough
      // for a listener of its own.
      this.#client.once('end', () => this.#timer?.refresh())
      return
    }
    this.stop()
    controller.abort(this.#answered ? new errors.BodyTimeoutError() : new errors.HeadersTimeoutError())
  }
}

function expire(deadline: UpstreamDeadline): void {
  deadline.expire()
}
