import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { RouteConfig } from '../config/types.js'
import type { UpstreamProofs } from '../dpop/upstream.js'
import { gatehouseError } from '../errors.js'
import { type SessionAudience, sessionAudience } from '../tokens/audience.js'
import { sendWithProof } from './dpop-proof.js'
import { Forward, type ForwardOptions } from './forward.js'
import type { GuardDeps } from './guard.js'
import { NonceListener, type Refusal, RefusedTokenHandler } from './refusal-handlers.js'
import { dpopProofRefused } from './upstream-errors.js'

/** Largest request body kept in memory so the request can be replayed after a refused token. */
export const REPLAY_BODY_LIMIT = 64 * 1024

export type ForwardWithRetry = (
  request: FastifyRequest,
  reply: FastifyReply,
  options: ForwardOptions,
  dest: string,
) => void

/**
 * The direct forward of a route that sends a token (`user`,
 * `optional-user`, `exchange`, `client`) with `retryOnInvalidToken`, or
 * `undefined` when the route has none. When the upstream refuses the token
 * (401 `invalid_token`: revoked, or its signing keys rotated), the answer
 * is held, the token is replaced (the session's by one refresh, the
 * gateway's client-credentials token by one fetch, however many requests
 * were refused for it) and the request replayed once; the browser sees
 * only the second answer. Inside the cool-down (`tokens.retryCooldown`,
 * per session and route, or per client token: see `replaceRefused`) nothing
 * is replaced and the held 401 goes to the browser as it came. A body is
 * replayable when declared at most `REPLAY_BODY_LIMIT`, and is then read
 * into memory first; a larger or chunked body streams through once and its
 * 401 goes to the browser as it came.
 *
 * On a `dpop` route each attempt with a key carries a fresh proof (`proofs`), and a
 * 401 `use_dpop_nonce` with a `DPoP-Nonce` (RFC 9449 §9) is replayed once
 * with the same token and a proof with that nonce, under the same body
 * rule. The nonce of every answer, a replay's included, is remembered for
 * the upstream origin: a server may hand out its next nonce in any answer
 * (§8.2), and one heard only in challenges would cost a replay per request.
 *
 * Each kind of replay happens at most once per request, in either order: a
 * replay with a new token may meet a nonce the upstream rotated meanwhile,
 * and a replay with a nonce may find the token refused. So a request is
 * sent at most three times, and a second token refusal goes to the
 * browser as it came. A nonce challenge not replayed (a second one, or to
 * a body that streamed through) is `503 upstream_dpop_nonce` instead: it
 * asks the gateway, the DPoP client, for a nonce, and a browser given the
 * 401 would sign in again for nothing (`nonceUnanswered`).
 */
export function tokenRetry(
  route: RouteConfig,
  deps: Pick<GuardDeps, 'sessions' | 'userTokens' | 'clientTokens'>,
  onRetry?: () => void,
  proofs?: UpstreamProofs,
): ForwardWithRetry | undefined {
  const retryToken = route.retryOnInvalidToken && route.token !== 'none'
  const dpop = route.dpop ? proofs : undefined
  if (!retryToken && !dpop) return undefined
  const audience = sessionAudience(route)
  const shared: RetryRoute = {
    dpop,
    upstream: route.upstream,
    // As a proof's `htu` names it (lower-case host, no default port): the
    // nonce is looked up by that, whatever case or port the config wrote.
    origin: new URL(route.upstream).origin,
    retryToken,
    replace:
      route.token === 'client'
        ? (request, refused) => replaceClientToken(deps, route, request, refused)
        : (request, refused) => replaceToken(deps, audience, route.path, request, refused),
    onRetry,
  }
  return function forwardWithRetry(request, reply, options, dest) {
    new Attempts(shared, request, reply, options, dest).start()
  }
}

/**
 * The replacement of a WebSocket upgrade's refused token on a route with
 * `retryOnInvalidToken`, or `undefined`: what an HTTP request's replay
 * does, one refresh (or client-credentials fetch) per refused token under
 * the cool-down, for the upstream's 401 `invalid_token` to an upgrade
 * (bridge.ts).
 */
export function upgradeTokenReplacer(
  route: RouteConfig,
  deps: Pick<GuardDeps, 'sessions' | 'userTokens' | 'clientTokens'>,
): ((request: FastifyRequest, refused: string) => Promise<string | undefined>) | undefined {
  if (!route.retryOnInvalidToken || route.token === 'none') return undefined
  if (route.token === 'client') return (request, refused) => replaceClientToken(deps, route, request, refused)
  const audience = sessionAudience(route)
  return (request, refused) => replaceToken(deps, audience, route.path, request, refused)
}

/**
 * The gateway's own token in place of the refused one (`ClientTokens.replaceRefused`):
 * one fetch for every request and instance refused for it. A bound one
 * comes with its own key, which the replay's proof is made with.
 */
async function replaceClientToken(
  deps: Pick<GuardDeps, 'clientTokens'>,
  route: RouteConfig,
  request: FastifyRequest,
  refused: string,
): Promise<string | undefined> {
  const token = await deps.clientTokens.replaceRefused(
    route.scopes,
    route.dpop,
    route.clientIdentityProvider,
    refused,
    route.path,
  )
  if (token === undefined) return undefined
  if (token.dpopKey) request.upstreamDpopKey = token.dpopKey
  return token.accessToken
}

async function replaceToken(
  deps: Pick<GuardDeps, 'sessions' | 'userTokens'>,
  audience: SessionAudience,
  route: string,
  request: FastifyRequest,
  refused: string,
): Promise<string | undefined> {
  const session = await deps.sessions.current(request)
  if (!session) throw gatehouseError('GATEHOUSE_ERR_UNAUTHENTICATED')
  return deps.userTokens.replaceRefused(session, audience(session), refused, route)
}

/** What a route's requests share. */
interface RetryRoute {
  readonly dpop: UpstreamProofs | undefined
  /** The upstream URL as configured: proofs are made for it and the request's path. */
  readonly upstream: string
  /** The upstream's origin, the key its nonce is remembered by. */
  readonly origin: string
  readonly retryToken: boolean
  replace(request: FastifyRequest, refused: string): Promise<string | undefined>
  readonly onRetry: (() => void) | undefined
}

/** How an attempt's answer is heard: as it comes, for its DPoP nonce, or for a refused token. */
type Hearing = 'plain' | 'nonce' | 'refusal'

/**
 * One request's attempts: the first, heard for a refused token and a
 * nonce challenge when the request can be replayed, and at most one replay
 * for each. One object per request, its steps methods rather than
 * closures, since every request on a retrying route makes one.
 */
class Attempts implements Refusal {
  readonly #route: RetryRoute
  readonly #request: FastifyRequest
  readonly #reply: FastifyReply
  readonly #options: ForwardOptions
  readonly #dest: string
  #refused = ''
  #hearing: Hearing = 'plain'
  /** A DPoP request that can be replayed: its answers' nonces are heard. */
  #proofed = false
  #nonceReplayed = false
  #tokenReplayed = false

  constructor(
    route: RetryRoute,
    request: FastifyRequest,
    reply: FastifyReply,
    options: ForwardOptions,
    dest: string,
  ) {
    this.#route = route
    this.#request = request
    this.#reply = reply
    this.#options = options
    this.#dest = dest
  }

  start(): void {
    const request = this.#request
    const refused = request.upstreamToken
    // Per request, not per route: on a route that binds, a session signed
    // in without DPoP sends its bearer token without a proof (guard.ts).
    this.#proofed = this.#route.dpop !== undefined && request.upstreamDpopKey !== null
    if (refused === null || !replayable(request) || !(this.#route.retryToken || this.#proofed)) {
      this.#send(this.#proofed ? 'nonce' : 'plain')
      return
    }
    this.#refused = refused
    const body = request.body as NodeJS.ReadableStream | null | undefined
    if (!body || typeof body.pipe !== 'function') {
      this.#send('refusal')
      return
    }
    readAll(body).then(
      (buffer) => {
        request.body = buffer
        this.#send('refusal')
      },
      // The client went away mid-body: nobody is left to answer.
      () => this.#reply.raw.destroy(),
    )
  }

  get tokenReplays(): boolean {
    return this.#route.retryToken && !this.#tokenReplayed
  }

  get nonceReplays(): boolean {
    return this.#proofed && !this.#nonceReplayed
  }

  /** True when this attempt went with the gateway's proof: a `use_dpop_nonce` to it is ours to answer. */
  get proofSent(): boolean {
    return this.#proofed && this.#request.upstreamProof !== null
  }

  proofRefused(): Error {
    // What the proof named (src/dpop/upstream.ts): the URL as sent, without its query.
    return dpopProofRefused(this.#request.method, `${this.#route.origin}${this.#dest || '/'}`)
  }

  replace(): Promise<string | undefined> {
    return this.#route.replace(this.#request, this.#refused)
  }

  replay(token: string): void {
    // The browser left while the token was replaced: the new token is kept
    // for its next request, and this one, a POST maybe, is not sent again
    // for nobody.
    if (this.#reply.raw.destroyed) return
    this.#tokenReplayed = true
    this.#route.onRetry?.()
    this.#request.upstreamToken = token
    this.#send('refusal')
  }

  fail(err: unknown): void {
    this.#reply.send(err)
  }

  seen(headers: IncomingHttpHeaders): void {
    if (this.#proofed) this.remember(headers)
  }

  remember(headers: IncomingHttpHeaders): void {
    this.#route.dpop?.remember(this.#route.origin, headers)
  }

  nonceReplay(): void {
    if (this.#reply.raw.destroyed) return
    this.#nonceReplayed = true
    // The nonce is remembered (`seen`); the new proof carries it.
    this.#request.upstreamProof = null
    this.#send('refusal')
  }

  #send(hearing: Hearing): void {
    this.#hearing = hearing
    const { dpop, upstream } = this.#route
    if (dpop === undefined) this.#dispatch()
    else sendWithProof(dpop, upstream, this.#request, this.#reply, this.#dest, () => this.#dispatch())
  }

  #dispatch(): void {
    const forward = new Forward(this.#request, this.#reply, this.#options)
    const hearing = this.#hearing
    forward.dispatch(
      this.#dest,
      hearing === 'refusal'
        ? new RefusedTokenHandler(forward, this)
        : hearing === 'nonce'
          ? new NonceListener(forward, this)
          : forward,
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
