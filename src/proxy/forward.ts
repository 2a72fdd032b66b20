import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher, Pool } from 'undici'
import { type RepeatedLines, repeatedField } from '../repeated-lines.js'
import { inRequestContext } from '../tracing/spans.js'
import { publicLocation, type RoutePrefixes } from './public-location.js'
import type { ForwardedRequest } from './request-headers.js'
import { type OutgoingHeaders, privateToSharedCaches, type ResponseHygiene } from './response-headers.js'
import { SendStall } from './send-stall.js'
import { StreamRecheck, type StreamRecheckOptions } from './stream-recheck.js'
import { UpstreamDeadline } from './upstream-deadline.js'
import {
  answerUpstreamFailure,
  headersRefused,
  refusedAnswer,
  type UpstreamErrorObserver,
} from './upstream-errors.js'

/**
 * Informational answers forwarded per request. undici restarts its headers
 * timeout on each, so an upstream sending them without end would hold the
 * request, and the browser's socket, for ever: past this many it is cut off.
 */
const MAX_INFORMATIONAL = 8

type UpstreamError = Error & { code?: string }

const exchange = Symbol('gatehouse.forward')
type Answering = ServerResponse & { [exchange]?: Forward }

function clientClosed(this: Answering): void {
  this[exchange]?.clientClosed()
}

export interface ForwardOptions extends RoutePrefixes, StreamRecheckOptions {
  readonly pool: Pool
  readonly rewriteHeaders: (request: ForwardedRequest, headers: IncomingHttpHeaders) => IncomingHttpHeaders
  /** What the upstream's answer may not pass on to the browser. */
  readonly hygiene: ResponseHygiene
  /** Counts a failure that happened before any of the upstream's response was sent. */
  readonly onUpstreamError?: UpstreamErrorObserver | undefined
  /** The route's failure lines, each written once a minute per cause (`answerUpstreamFailure`). */
  readonly failureLines: RepeatedLines
  /** True while the gateway drains: answers then carry `Connection: close`, set in an `onSend` hook. */
  readonly draining: () => boolean
  /** The route's timeout when undici's timers are too coarse for it (`ownDeadline`), else `undefined`. */
  readonly deadline?: number | undefined
  /** `server.sendTimeout`: how long the answer waits for a browser that takes none of it, ms. */
  readonly sendTimeout: number
}

/**
 * Streams one request to the upstream over the route's undici pool, and the
 * answer back with no stream objects in between: undici's dispatch hands
 * over each chunk, which goes straight to the client's socket, pausing the
 * upstream while that socket is full. reply-from's path (a Readable body
 * piped through Fastify's send) cost about 40 µs more CPU per call on the
 * bench machine, a third of a bare proxy's whole budget (see
 * docs/performance.md). Fastify's `onSend` hooks do not run for a hijacked
 * reply, so an answer they have work on is instead handed to `reply.send`
 * as a `Readable` fed by the same events: one dispatch, and so one place to
 * refuse a token (see `token-retry.ts`), whichever way the answer goes out.
 * On a route whose token stands on the session, the answer waits while the
 * session is read again (stream-recheck.ts, the class this extends).
 */
export class Forward extends StreamRecheck implements Dispatcher.DispatchHandler {
  protected declare readonly options: ForwardOptions
  #controller: Dispatcher.DispatchController | undefined
  /** The route's timeout kept by a timer of our own, on a route with a short one. */
  readonly #deadline: UpstreamDeadline | undefined
  /** The answer's body when it goes out through `reply.send`. */
  #body: Readable | undefined
  #started = false
  #finished = false
  /** Informational (1xx) answers seen so far. */
  #interim = 0
  /** `sendTimeout`, made when the browser's socket first fills. */
  #sendStall: SendStall | undefined
  /**
   * The browser's answer is whole without the rest of the upstream's: a 204
   * or 304 with its head (`#bodiless`), or the 401 of a session that ended
   * before the head came (stream-recheck.ts). What undici reports after is not heard.
   */
  #settled = false
  /** The headers the request went out with, measured if the upstream refuses them (431). */
  #sent: IncomingHttpHeaders = {}

  constructor(request: FastifyRequest, reply: FastifyReply, options: ForwardOptions) {
    super(request, reply, options)
    this.#deadline =
      options.deadline === undefined ? undefined : new UpstreamDeadline(options.deadline, request.raw)
  }

  /**
   * Sends the request; the answer arrives through the handler methods, or
   * through `handler` when one wraps them (see `token-retry.ts`).
   */
  dispatch(dest: string, handler: Dispatcher.DispatchHandler = this): void {
    const request = this.request
    const url = request.raw.url ?? ''
    const query = url.indexOf('?')
    const path = (dest || '/') + (query === -1 ? '' : url.slice(query))
    const body = request.body as Dispatcher.DispatchOptions['body']
    // A client that goes away mid-answer must not keep the upstream busy.
    // One listener function for every request, which finds its exchange on
    // the response: no closure and no `once` wrapper per request. A replay
    // (token-retry.ts) takes the listener over from the attempt it replaces.
    const raw = this.reply.raw as Answering
    const previous = raw[exchange]
    if (previous === undefined) raw.on('close', clientClosed)
    raw[exchange] = this
    this.watchSession(previous)
    this.#sent = this.options.rewriteHeaders(request, request.headers)
    this.options.pool.dispatch(
      {
        path,
        method: request.method as Dispatcher.HttpMethod,
        headers: this.#sent,
        body: body ?? null,
      },
      inRequestContext(handler),
    )
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    this.#deadline?.start(controller)
  }

  /** The client's connection closed: the upstream call goes too, unless it is over. */
  clientClosed(): void {
    this.#taken()
    if (!this.#finished) this.#controller?.abort(new Error('client closed the connection'))
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    upstream: IncomingHttpHeaders,
  ): void {
    this.#deadline?.heard(statusCode >= 200)
    if (this.reply.raw.destroyed) {
      controller.abort(new Error('client closed the connection'))
      return
    }
    if (statusCode < 200) {
      this.#informational(controller, statusCode, upstream)
      return
    }
    if (this.holdsHead(controller, statusCode, upstream)) return
    this.head(controller, statusCode, upstream)
  }

  /** The final head goes on to the browser. */
  protected override head(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    upstream: IncomingHttpHeaders,
  ): void {
    const reply = this.reply
    // RFC 9110 §15: a status is 100–599, and a client takes one past it as a
    // 5xx; llhttp reads any three digits and Node writes up to 999, so on the
    // hijacked path a 600–999 reached the browser as it came, where Fastify's
    // send refuses it.
    if (statusCode > 599) {
      controller.abort(refusedAnswer(`the upstream answered with status ${statusCode}`))
      return
    }
    // RFC 6585 §5: the upstream refused the head, which carries the token the
    // gateway added; the browser's own headers passed the gateway's limit.
    if (statusCode === 431 && this.request.upstreamToken !== null) {
      controller.abort(headersRefused(this.#sent))
      return
    }
    const location = upstream.location
    // RFC 9110 §10.2.2: one URI. Of two, neither is the redirect to map or follow.
    if (Array.isArray(location)) {
      controller.abort(refusedAnswer('the upstream answered with two Location fields'))
      return
    }
    const viaSend = this.#needsOnSend()
    const headers: OutgoingHeaders = viaSend ? {} : reply.getHeaders()
    this.options.hygiene.copy(upstream, headers, true, reply.log)
    if (this.request.upstreamToken !== null) privateToSharedCaches(headers)
    if (location) headers.location = publicLocation(location, this.options)
    this.#started = true
    if (statusCode === 204 || statusCode === 304) {
      this.#bodiless(statusCode, headers, viaSend)
      return
    }
    if (viaSend) {
      this.#send(controller, statusCode, headers)
      return
    }
    reply.hijack()
    reply.raw.writeHead(statusCode, headers)
  }

  protected override settle(): void {
    this.#settled = true
    this.#finished = true
    this.#deadline?.stop()
  }

  protected override get settled(): boolean {
    return this.#settled
  }

  /**
   * RFC 9110 §6.4.1: a 204 or 304 has no content, whatever its head says,
   * so the answer is whole with its head. §8.6 lets a 304 carry the
   * Content-Length its 200 would have had (ASP.NET Core sends it), and
   * undici, counting a body it never reads against it, then fails the
   * exchange (`UND_ERR_RES_CONTENT_LENGTH_MISMATCH`) after the head is
   * out: the browser's connection was destroyed with nothing sent. What
   * undici reports after the head is not heard. A 204 may not carry one
   * at all (§8.6), so its is dropped.
   */
  #bodiless(statusCode: number, headers: OutgoingHeaders, viaSend: boolean): void {
    this.settle()
    if (statusCode === 204) delete headers['content-length']
    const reply = this.reply
    if (viaSend) {
      reply.code(statusCode).headers(headers).send()
      return
    }
    reply.hijack()
    reply.raw.writeHead(statusCode, headers).end()
  }

  /**
   * A 1xx before the answer. undici hands each one over like a final head;
   * written as one, the real answer then failed with ERR_HTTP_HEADERS_SENT
   * and the browser got nothing. `103 Early Hints` (RFC 8297) goes on as
   * one, its headers filtered like any upstream header and without
   * `Set-Cookie`, which belongs to the final answer; others (102) are
   * dropped, as is anything for an HTTP/1.0 client (RFC 9110 §15.2).
   */
  #informational(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    upstream: IncomingHttpHeaders,
  ) {
    if (++this.#interim > MAX_INFORMATIONAL) {
      controller.abort(new Error('the upstream sent too many informational responses'))
      return
    }
    const raw = this.reply.raw
    const { httpVersionMajor, httpVersionMinor } = this.request.raw
    if (statusCode !== 103 || raw.headersSent || (httpVersionMajor === 1 && httpVersionMinor === 0)) return
    const hints: Record<string, string | string[]> = {}
    this.options.hygiene.copy(upstream, hints, false, this.reply.log)
    if (hints.link === undefined) return
    try {
      raw.writeEarlyHints(hints)
    } catch {
      // A Link value Node will not send: the hint is lost, the answer is not.
      this.reply.log.debug('upstream early hint dropped: Node refused its Link header')
    }
  }

  /**
   * True when Fastify's `onSend` hooks have work to do on this answer: a
   * session cookie to set or clear, `Connection: close` while draining.
   * Asked when the answer arrives, so it sees what the request did until
   * then (a session found gone clears the cookie). The login cookie is the
   * sign-in routes' alone.
   */
  #needsOnSend(): boolean {
    return this.request.session.changed || this.options.draining()
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#deadline?.heard(false)
    if (this.holdsData(controller, chunk)) return
    this.pass(controller, chunk)
  }

  /** Sends a chunk on to the browser; true when its socket is full and the upstream paused for it. */
  protected override pass(controller: Dispatcher.DispatchController, chunk: Buffer): boolean {
    if (this.#body) {
      if (this.#body.push(chunk)) return false
      controller.pause()
      this.#stall()
      return true
    }
    const res = this.reply.raw
    if (res.write(chunk)) return false
    controller.pause()
    this.#stall()
    res.once('drain', () => this.resume(controller))
    return true
  }

  override onResponseEnd(): void {
    if (this.#settled || this.holdsEnd()) return
    this.#finished = true
    this.#deadline?.stop()
    const res = this.reply.raw
    if (this.#body) this.#body.push(null)
    else res.end()
    // The upstream is done, but the browser may be taking none of the end
    // of the answer, which then holds the exchange and its socket open.
    if (res.writableNeedDrain) this.#stall()
  }

  /** The browser's socket is full and the upstream is paused for it (see send-stall.ts). */
  #stall(): void {
    this.#sendStall ??= new SendStall(
      this.reply.raw,
      this.options.sendTimeout,
      this.reply.log,
      this.options.failureLines,
    )
    this.#sendStall.arm()
  }

  /** The browser took some of the answer, or its connection closed. */
  #taken(): void {
    this.#sendStall?.taken()
  }

  override onResponseError(_controller: Dispatcher.DispatchController, error: UpstreamError): void {
    if (this.#settled || this.holdsError(error)) return
    this.#finished = true
    this.#deadline?.stop()
    // The client left, and this is our own abort: nobody is there to answer.
    if (this.reply.raw.destroyed) return
    if (!this.#started) {
      answerUpstreamFailure(
        this.reply,
        error,
        this.options.route,
        this.options.failureLines,
        this.options.onUpstreamError,
      )
      return
    }
    // Headers are out: all that is left is to cut the answer short, so the
    // client sees a truncated response rather than a complete-looking one.
    const upstreamError = error.code ?? error.name
    const held = this.options.failureLines.admit(`mid-body ${upstreamError}`)
    if (held !== undefined)
      this.reply.log.warn({ upstreamError, ...repeatedField(held) }, 'upstream response failed mid-body')
    this.reply.raw.destroy()
  }

  /**
   * The answer through Fastify, so its `onSend` hooks run. Fastify writes
   * the head with the first chunk, and pulls the rest with backpressure.
   */
  #send(controller: Dispatcher.DispatchController, statusCode: number, headers: OutgoingHeaders): void {
    const body = new Readable({
      read: () => {
        this.#taken()
        this.resume(controller)
      },
    })
    this.#body = body
    this.reply.code(statusCode).headers(headers).send(body)
  }
}
