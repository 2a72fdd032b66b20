import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import { gatehouseError } from '../errors.js'
import type { StreamSession } from './stream-session.js'

export interface StreamRecheckOptions {
  /** The route's path, for the log line and the metric label of a failure. */
  readonly route: string
  /** On a route whose token stands on the session: its re-reads while an answer streams. */
  readonly session?: StreamSession | undefined
}

/**
 * The session re-checks of one proxied answer (see stream-session.ts): its
 * final head, or a chunk, that arrives `interval` or more after the session
 * its token stands on was last known to stand waits, the upstream paused,
 * while the session is read again. `Forward` extends this rather than
 * owning one, so that a proxied request makes no more objects than it did
 * (the hot path, docs/performance.md): the state is fields of the
 * exchange, the handling its methods, and what the exchange does with its
 * answer the abstract ones.
 */
export abstract class StreamRecheck {
  protected readonly request: FastifyRequest
  protected readonly reply: FastifyReply
  protected readonly options: StreamRecheckOptions
  /**
   * When the session this answer's token stands on was last known to stand,
   * on the monotonic clock (`performance.now()`); `undefined` when none does.
   * Elapsed time, not the sessions' clock: that one says when a session
   * expires, and may jump (a VM resumed, a test's clock), which would have
   * every answer in flight read its session again at once.
   */
  #seenAt: number | undefined
  /** Chunks that wait, the upstream paused, while the session is read again (`#recheck`). */
  #held: Buffer[] | undefined
  /** The upstream ended while chunks were held. */
  #endHeld = false
  /** The final head, held with the upstream paused while the session is read again (`#recheckHead`). */
  #heldHead: { readonly statusCode: number; readonly headers: IncomingHttpHeaders } | undefined
  /** The upstream failed while the head was held. */
  #errorHeld: Error | undefined

  constructor(request: FastifyRequest, reply: FastifyReply, options: StreamRecheckOptions) {
    this.request = request
    this.reply = reply
    this.options = options
  }

  /** The final head goes on to the browser. */
  protected abstract head(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    upstream: IncomingHttpHeaders,
  ): void

  /** Sends a chunk on to the browser; true when its socket is full and the upstream paused for it. */
  protected abstract pass(controller: Dispatcher.DispatchController, chunk: Buffer): boolean

  /** The browser's answer is whole without the rest of the upstream's. */
  protected abstract settle(): void

  protected abstract get settled(): boolean

  abstract onResponseEnd(): void

  abstract onResponseError(controller: Dispatcher.DispatchController, error: Error): void

  /**
   * The answer is held for its session from now on, when the request
   * carries a token that stands on the session. `previous`: the attempt a
   * replay (token-retry.ts) replaces.
   */
  protected watchSession(previous: StreamRecheck | undefined): void {
    if (this.options.session === undefined || this.request.upstreamToken === null) return
    // The guard has just read the session the token stands on; a replay's
    // session was last seen when its first attempt's was, however long
    // that attempt's answer and the token's replacement took.
    this.#seenAt = previous === undefined ? performance.now() : previous.#seenAt
  }

  /** True when the session is due to be read again before the answer goes on. */
  #due(): boolean {
    const seenAt = this.#seenAt
    return seenAt !== undefined && performance.now() - seenAt >= this.options.session!.interval
  }

  /** True when the final head waits for the session's read. */
  protected holdsHead(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    upstream: IncomingHttpHeaders,
  ): boolean {
    if (!this.#due()) return false
    this.#recheckHead(controller, statusCode, upstream, this.options.session!)
    return true
  }

  /** True when the chunk waits for the session's read. */
  protected holdsData(controller: Dispatcher.DispatchController, chunk: Buffer): boolean {
    if (this.#held !== undefined) {
      this.#held.push(chunk)
      return true
    }
    if (!this.#due()) return false
    this.#recheck(controller, chunk, this.options.session!)
    return true
  }

  /** True when the upstream's end waits, behind held chunks, for the session's read. */
  protected holdsEnd(): boolean {
    if (this.#held === undefined) return false
    this.#endHeld = true
    return true
  }

  /** True when the upstream's failure waits, behind the held head, for the session's read. */
  protected holdsError(error: Error): boolean {
    if (this.#heldHead === undefined) return false
    this.#errorHeld = error
    return true
  }

  /** Reads the upstream again, unless it is paused for a session check. */
  protected resume(controller: Dispatcher.DispatchController): void {
    if (this.#held === undefined) controller.resume()
  }

  /**
   * The final head came `interval` or more after the session was last
   * known to stand (a long poll, a slow upstream): it waits, the upstream
   * paused, while the session is read again, before anything is sent. Once
   * the head is out, a session found ended can only cut the answer off,
   * and the browser would see a network error where any other request of
   * the ended session gets its 401. With the store unreachable the session
   * is taken to stand, as for a chunk (`#recheck`).
   */
  #recheckHead(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    upstream: IncomingHttpHeaders,
    session: StreamSession,
  ): void {
    const ref = session.ref(this.request)
    if (ref === undefined) {
      this.#seenAt = undefined
      this.head(controller, statusCode, upstream)
      return
    }
    this.#heldHead = { statusCode, headers: upstream }
    this.#held = []
    controller.pause()
    session.stands(ref).then(
      (stands) => this.#headDecided(controller, stands),
      () => this.#headDecided(controller, true),
    )
  }

  #headDecided(controller: Dispatcher.DispatchController, stands: boolean): void {
    const { statusCode, headers } = this.#heldHead!
    const held = this.#held!
    const error = this.#errorHeld
    this.#heldHead = undefined
    this.#held = undefined
    this.#errorHeld = undefined
    // The browser left meanwhile, which aborted the upstream call (`clientClosed`).
    if (this.reply.raw.destroyed) return
    if (!stands) {
      this.settle()
      if (!this.#endHeld && error === undefined)
        controller.abort(new Error('the session ended before its answer came'))
      this.reply.log.info({ route: this.options.route }, 'session ended before its answer came; answered 401')
      // A request of the ended session's is answered so (guard.ts). The
      // cookie is left alone: the session ended while this request used
      // it, and a sign-in over it in this browser may have set a new
      // session's cookie meanwhile (`endedElsewhere`, error-handler.ts).
      this.reply.send(gatehouseError('GATEHOUSE_ERR_UNAUTHENTICATED'))
      return
    }
    this.#seenAt = performance.now()
    this.head(controller, statusCode, headers)
    if (controller.aborted) {
      // undici hears no abort of an exchange that has failed already, so
      // the head's refusal (431, two Locations) is answered here.
      if (error !== undefined) this.onResponseError(controller, controller.reason as Error)
      return
    }
    if (this.settled) {
      // A 204 or 304 went out whole; undici still has to finish the exchange.
      if (!this.#endHeld && error === undefined) controller.resume()
      return
    }
    let paused = false
    for (const chunk of held) paused = this.pass(controller, chunk) || paused
    if (error !== undefined) this.onResponseError(controller, error)
    else if (this.#endHeld) this.onResponseEnd()
    else if (!paused) controller.resume()
  }

  /**
   * A chunk arrived `interval` or more after the session was last known to
   * stand: it waits, the upstream paused, while the session is read again,
   * and goes on only if the session still stands. So a streamed answer
   * carries nothing more than `interval` after its session ended (see
   * stream-session.ts); an answer that ends sooner is never held.
   */
  #recheck(controller: Dispatcher.DispatchController, chunk: Buffer, session: StreamSession): void {
    const ref = session.ref(this.request)
    if (ref === undefined) {
      this.#seenAt = undefined
      this.pass(controller, chunk)
      return
    }
    this.#held = [chunk]
    controller.pause()
    const decided = (stands: boolean) => {
      const held = this.#held!
      this.#held = undefined
      const res = this.reply.raw
      if (res.destroyed) return
      if (!stands) {
        this.reply.log.info({ route: this.options.route }, 'session ended while its answer streamed; cut off')
        res.destroy()
        return
      }
      this.#seenAt = performance.now()
      let paused = false
      for (const next of held) paused = this.pass(controller, next) || paused
      if (this.#endHeld) this.onResponseEnd()
      else if (!paused) controller.resume()
    }
    session.stands(ref).then(decided, () => decided(true))
  }
}
