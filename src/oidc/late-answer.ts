import type { Rotated } from './rotated.js'

/**
 * An IdP's answer that arrives after the caller stopped waiting for it.
 *
 * A refresh rotates the refresh token (RFC 9700 §4.14.2) the moment the IdP
 * carries it out, whether or not its answer reaches the gateway in time.
 * Hanging up at `oidc.timeout` would lose the only copy of the new refresh
 * token, and the session's next redemption would present the spent one: a
 * replay, which a rotating IdP answers by revoking the grant. So the
 * caller is told of the timeout on time, but the request goes on, and its
 * answer, when it comes, is handed to whoever holds the session's refresh
 * lock (src/tokens/late-writes.ts), to be stored.
 *
 * Bounded: at most MAX_LATE_ANSWERS are awaited at once per identity
 * provider (its issuer) in a process, each for at most
 * `oidc.lateAnswerWait` (idp-http.ts's patient budget); past the count, or
 * with that wait 0, a call is given up at its timeout. Per provider, as
 * each provider's outage is its own: one bound for all let a slow or
 * hostile provider whose every refresh timed out hold every slot, and
 * another's refresh that timed out meanwhile was given up, its rotated
 * refresh token lost.
 */

/** What a late answer brought: the new tokens, or the rotated refresh token of an answer refused. */
export type LateAnswer<T> =
  | { readonly tokens: T; readonly rotated?: undefined }
  | { readonly tokens?: undefined; readonly rotated: Rotated | undefined }

/** Late answers awaited at once per provider in a process; a slow IdP with many sessions must not hold a socket each without end. */
export const MAX_LATE_ANSWERS = 1_024

const late = new WeakMap<Error, Promise<LateAnswer<unknown>>>()

/** The answer still awaited of a call that timed out, if it is awaited. */
export function lateAnswerOf<T>(err: unknown): Promise<LateAnswer<T>> | undefined {
  for (let e = err; e instanceof Error; e = e.cause) {
    const answer = late.get(e)
    if (answer) return answer as Promise<LateAnswer<T>>
  }
  return undefined
}

/** `err`, carrying the answer still awaited. */
export function withLateAnswer<E extends Error, T>(err: E, answer: Promise<LateAnswer<T>>): E {
  late.set(err, answer)
  return err
}

/**
 * The timeout the caller gets: what `AbortSignal.timeout` would have
 * rejected with, so it is classified and reported as every IdP timeout is
 * (`timed out after … ms (oidc.timeout)`).
 */
function timeoutError(): DOMException {
  return new DOMException('The operation was aborted due to timeout', 'TimeoutError')
}

export class LateAnswers {
  readonly #max: number
  /** Late answers awaited, by provider; a provider with none has no entry. */
  readonly #awaited = new Map<string, number>()

  constructor(max = MAX_LATE_ANSWERS) {
    this.#max = max
  }

  /** Late answers awaited now, of every provider. */
  get awaited(): number {
    let sum = 0
    for (const count of this.#awaited.values()) sum += count
    return sum
  }

  /**
   * Runs `call` with a signal that gives up on it, and answers within
   * `timeoutMs` or rejects with a timeout. When it times out, `wait` is
   * set and a slot of provider `idp` (its issuer) is free, `call` goes on:
   * the rejection carries its answer to come (`lateAnswerOf`), made by
   * `settle` from what `call` resolved or rejected with; else `call` is
   * aborted then.
   */
  async within<R, T>(
    timeoutMs: number,
    wait: boolean,
    call: (signal: AbortSignal) => Promise<R>,
    settle: (outcome: { readonly value: R } | { readonly error: unknown }) => LateAnswer<T>,
    idp = '',
  ): Promise<R> {
    const abort = new AbortController()
    const answer = call(abort.signal)
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timeoutError()), timeoutMs)
    })
    try {
      return await Promise.race([answer, timedOut])
    } catch (err) {
      if (!(err instanceof DOMException) || err.name !== 'TimeoutError' || abort.signal.aborted) throw err
      const awaited = this.#awaited.get(idp) ?? 0
      if (!wait || awaited >= this.#max) {
        abort.abort(err)
        answer.catch(() => {})
        throw err
      }
      this.#awaited.set(idp, awaited + 1)
      const settled = answer
        .then(
          (value) => settle({ value }),
          (error: unknown) => settle({ error }),
        )
        .finally(() => this.#release(idp))
      throw withLateAnswer(err, settled)
    } finally {
      clearTimeout(timer)
    }
  }

  #release(idp: string): void {
    const left = (this.#awaited.get(idp) ?? 1) - 1
    if (left > 0) this.#awaited.set(idp, left)
    else this.#awaited.delete(idp)
  }
}
