/**
 * What hears the head of an upstream's answer for `token-retry.ts`, before
 * any of it reaches the browser: a refused token held while it is
 * replaced, a DPoP nonce challenge replayed, and the DPoP answers only the
 * gateway can act on (a refused proof, a challenge not replayed) turned
 * into its own errors, since the browser holds no key.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import { usableNonce } from '../dpop/nonces.js'
import { challengesForNonce, refusesProof } from '../dpop/upstream.js'
import { hasChallenge } from '../www-authenticate.js'
import type { Forward } from './forward.js'
import { nonceUnanswered } from './upstream-errors.js'

/**
 * RFC 6750 §3.1: `invalid_token` says the token is expired, revoked or
 * otherwise not accepted, so a fresh one may succeed; other errors
 * (`insufficient_scope`) would fail the same way again.
 */
export function refusesToken(header: string | string[] | undefined): boolean {
  // RFC 9449 §7.1: a resource server refuses a DPoP-bound token under the DPoP scheme.
  return hasChallenge(header, TOKEN_SCHEMES, ['invalid_token'])
}

const TOKEN_SCHEMES = ['bearer', 'dpop']

/** One request's attempts, as a handler that remembers nonces sees them. */
export interface ProofHolder {
  /** Remembers the answer's `DPoP-Nonce` for the upstream's origin. */
  remember(headers: IncomingHttpHeaders): void
  /** True when the attempt carried the gateway's proof. */
  readonly proofSent: boolean
  /** The abort of an answer that refused the attempt's proof (`invalid_dpop_proof`). */
  proofRefused(): Error
}

/** One request's attempts, as the handler of a replayable request sees them. */
export interface Refusal extends ProofHolder {
  /** True when a 401 `invalid_token` is answered by `replace` and `replay`. */
  readonly tokenReplays: boolean
  /** A replacement token, or `undefined` when the 401 passes to the browser. */
  replace(): Promise<string | undefined>
  replay(token: string): void
  fail(err: unknown): void
  /** Hears the head of every answer (a DPoP route remembers its nonce). */
  seen(headers: IncomingHttpHeaders): void
  /** True when a 401 `use_dpop_nonce` is answered by `nonceReplay`. */
  readonly nonceReplays: boolean
  /** Sends the request again with the same token and a new proof, after `use_dpop_nonce`. */
  nonceReplay(): void
}

/** Why a challenge whose nonce `usableNonce` refuses is not replayed (here and for an upgrade, bridge.ts). */
export const UNUSABLE_NONCE =
  'the challenge carried no DPoP-Nonce a proof may carry (RFC 9449 §8.1: one field of printable ASCII without spaces or quotes; Gatehouse takes up to 1 KiB)'

/** Why a second challenge, to the replay that carried the first one's nonce, is not replayed. */
export const CHALLENGED_AGAIN = 'the upstream asked again after the replay carried its nonce'

/**
 * What a 401 to an attempt with the gateway's proof asks of the gateway
 * alone, since the browser holds no key: `refused`, the proof itself
 * (`invalid_dpop_proof`, RFC 9449 §7.1); `nonce`, a nonce the proof may
 * carry (`use_dpop_nonce`, §9); `unusable`, a nonce challenge with none a
 * proof may carry; `undefined`, anything else, the browser's to hear.
 */
function dpopChallenge(
  statusCode: number,
  headers: IncomingHttpHeaders,
  attempt: ProofHolder,
): 'refused' | 'nonce' | 'unusable' | undefined {
  if (statusCode !== 401 || !attempt.proofSent) return undefined
  if (refusesProof(headers)) return 'refused'
  if (!challengesForNonce(headers)) return undefined
  return usableNonce(headers['dpop-nonce']) ? 'nonce' : 'unusable'
}

/** Remembers the nonce of the answers it passes on, and changes nothing else. */
export class NonceListener implements Dispatcher.DispatchHandler {
  readonly #inner: Forward
  readonly #attempts: ProofHolder

  constructor(inner: Forward, attempts: ProofHolder) {
    this.#inner = inner
    this.#attempts = attempts
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#inner.onRequestStart(controller)
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    this.#attempts.remember(headers)
    const challenge = dpopChallenge(statusCode, headers, this.#attempts)
    if (challenge === 'refused') {
      controller.abort(this.#attempts.proofRefused())
      return
    }
    if (challenge !== undefined) {
      controller.abort(
        nonceUnanswered(
          challenge === 'nonce'
            ? 'the request body was too large or chunked to be held for a replay'
            : UNUSABLE_NONCE,
        ),
      )
      return
    }
    this.#inner.onResponseStart(controller, statusCode, headers)
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#inner.onResponseData(controller, chunk)
  }

  onResponseEnd(): void {
    this.#inner.onResponseEnd()
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    this.#inner.onResponseError(controller, error)
  }
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
 * Hands a replayable attempt's events to its `Forward`, except two 401s
 * while their replay is left. A `use_dpop_nonce` is cut off at its head
 * and replayed at once. An `invalid_token` pauses the upstream on its head
 * while `replace` decides, and the answer is then either cut off before
 * anything reaches the browser, with `replay` sending the request again,
 * or handed on as it came, with whatever arrived meanwhile.
 */
export class RefusedTokenHandler implements Dispatcher.DispatchHandler {
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
    const refusal = this.#refusal
    refusal.seen(headers)
    const challenge = dpopChallenge(statusCode, headers, refusal)
    if (challenge === 'nonce' && refusal.nonceReplays) {
      this.#state = 'dropped'
      controller.abort(new Error('the upstream asked for a DPoP nonce; its answer is dropped'))
      refusal.nonceReplay()
      return
    }
    if (challenge !== undefined) {
      // Still 'passing': the abort reaches the browser through `Forward`.
      controller.abort(
        challenge === 'refused'
          ? refusal.proofRefused()
          : nonceUnanswered(challenge === 'nonce' ? CHALLENGED_AGAIN : UNUSABLE_NONCE),
      )
      return
    }
    if (statusCode !== 401 || !refusal.tokenReplays || !refusesToken(headers['www-authenticate'])) {
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
