import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import type { RouteConfig } from '../config/types.js'
import { gatehouseError } from '../errors.js'
import { audienceOf } from '../tokens/audience.js'
import { Forward, type ForwardOptions } from './forward.js'
import type { GuardDeps } from './guard.js'

/** Largest request body kept in memory so the request can be replayed after a refused token. */
export const REPLAY_BODY_LIMIT = 64 * 1024

/**
 * RFC 6750 §3.1: `invalid_token` says the token is expired, revoked or
 * otherwise not accepted, so a fresh one may succeed; other errors
 * (`insufficient_scope`) would fail the same way again.
 */
export function refusesToken(header: string | string[] | undefined): boolean {
  if (header === undefined) return false
  const values = Array.isArray(header) ? header : [header]
  return values.some((v) => /\bbearer\b/i.test(v) && /\berror\s*=\s*"?invalid_token\b/i.test(v))
}

export type ForwardWithRetry = (
  request: FastifyRequest,
  reply: FastifyReply,
  options: ForwardOptions,
  dest: string,
) => void

/**
 * The direct forward of a `user` or `optional-user` route with
 * `retryOnInvalidToken`, or `undefined` when the route has none. When the
 * upstream refuses the token (401 `invalid_token`: revoked, or its signing
 * keys rotated), the answer is held, the session's token is replaced (one
 * refresh however many requests were refused for it) and the request
 * replayed once; the browser sees only the second answer. Inside the
 * route's cool-down (`tokens.retryCooldown`, see `replaceRefused`) nothing
 * is replaced and the held 401 goes to the browser as it came. A body is
 * replayable when declared at most `REPLAY_BODY_LIMIT`, and is then read
 * into memory first; a larger or chunked body streams through once and its
 * 401 goes to the browser as it came.
 */
export function tokenRetry(
  route: RouteConfig,
  deps: Pick<GuardDeps, 'sessions' | 'userTokens'>,
  onRetry?: () => void,
): ForwardWithRetry | undefined {
  if (!route.retryOnInvalidToken || (route.token !== 'user' && route.token !== 'optional-user'))
    return undefined
  const audience = audienceOf(route)

  async function replace(request: FastifyRequest, refused: string): Promise<string | undefined> {
    const session = await deps.sessions.current(request)
    if (!session) throw gatehouseError('GATEHOUSE_ERR_UNAUTHENTICATED')
    return deps.userTokens.replaceRefused(session, audience, refused, route.path)
  }

  return function forwardWithRetry(request, reply, options, dest) {
    const refused = request.upstreamToken
    if (refused === null || !replayable(request)) {
      new Forward(request, reply, options).dispatch(dest)
      return
    }
    const first = new Forward(request, reply, options)
    const handler = new RefusedTokenHandler(first, {
      replace: () => replace(request, refused),
      replay(token) {
        onRetry?.()
        request.upstreamToken = token
        new Forward(request, reply, options).dispatch(dest)
      },
      fail: (err) => reply.send(err),
    })
    const body = request.body as NodeJS.ReadableStream | null | undefined
    if (!body || typeof body.pipe !== 'function') {
      first.dispatch(dest, handler)
      return
    }
    readAll(body).then(
      (buffer) => {
        request.body = buffer
        first.dispatch(dest, handler)
      },
      // The client went away mid-body: nobody is left to answer.
      () => reply.raw.destroy(),
    )
  }
}

function replayable(request: FastifyRequest): boolean {
  if (request.headers['transfer-encoding'] !== undefined) return false
  const length = request.headers['content-length']
  return length === undefined || Number(length) <= REPLAY_BODY_LIMIT
}

async function readAll(body: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of body) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

interface Refusal {
  /** A replacement token, or `undefined` when the 401 passes to the browser. */
  replace(): Promise<string | undefined>
  replay(token: string): void
  fail(err: unknown): void
}

/** What the upstream sent of a refusal while it was being decided on. */
interface Held {
  readonly statusCode: number
  readonly headers: IncomingHttpHeaders
  readonly chunks: Buffer[]
  ended: boolean
  error: Error | undefined
}

/**
 * Hands the first attempt's events to its `Forward`, except a 401
 * `invalid_token`: the upstream is paused on its head while `replace`
 * decides, and the answer is then either cut off before anything reaches
 * the browser, with `replay` sending the request again, or handed on as
 * it came, with whatever arrived meanwhile.
 */
class RefusedTokenHandler implements Dispatcher.DispatchHandler {
  readonly #inner: Forward
  readonly #refusal: Refusal
  #state: 'passing' | 'deciding' | 'dropped' = 'passing'
  #held: Held | undefined

  constructor(inner: Forward, refusal: Refusal) {
    this.#inner = inner
    this.#refusal = refusal
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#inner.onRequestStart(controller)
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    if (statusCode !== 401 || !refusesToken(headers['www-authenticate'])) {
      this.#inner.onResponseStart(controller, statusCode, headers)
      return
    }
    this.#state = 'deciding'
    this.#held = { statusCode, headers, chunks: [], ended: false, error: undefined }
    controller.pause()
    this.#refusal.replace().then(
      (token) => {
        if (token === undefined) this.#passOn(controller)
        else this.#drop(controller, () => this.#refusal.replay(token))
      },
      (err: unknown) => this.#drop(controller, () => this.#refusal.fail(err)),
    )
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#state === 'passing') this.#inner.onResponseData(controller, chunk)
    else if (this.#state === 'deciding') this.#held!.chunks.push(chunk)
  }

  onResponseEnd(): void {
    if (this.#state === 'passing') this.#inner.onResponseEnd()
    else if (this.#state === 'deciding') this.#held!.ended = true
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    if (this.#state === 'passing') this.#inner.onResponseError(controller, error)
    else if (this.#state === 'deciding') this.#held!.error = error
  }

  #drop(controller: Dispatcher.DispatchController, then: () => void): void {
    this.#state = 'dropped'
    controller.abort(new Error('the upstream refused the token; its answer is dropped'))
    then()
  }

  /** The refusal goes to the browser after all, with whatever the upstream sent while it waited. */
  #passOn(controller: Dispatcher.DispatchController): void {
    const held = this.#held!
    this.#state = 'passing'
    this.#inner.onResponseStart(controller, held.statusCode, held.headers)
    for (const chunk of held.chunks) this.#inner.onResponseData(controller, chunk)
    if (held.error) this.#inner.onResponseError(controller, held.error)
    else if (held.ended) this.#inner.onResponseEnd()
    else controller.resume()
  }
}
