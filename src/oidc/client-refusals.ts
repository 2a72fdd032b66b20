import type { IdpOperation } from './answers.js'
import type { IdpFailure } from './translate.js'

/**
 * Which calls the IdP refuses the gateway's own credentials for right now:
 * set by a refusal, cleared by the next call of the same kind that the IdP
 * authenticates. Bounded by the operations of the classification.
 */
export class ClientRefusals {
  readonly #refused = new Map<IdpOperation, IdpFailure>()

  refused(failure: IdpFailure): void {
    this.#refused.set(failure.operation, failure)
  }

  /** True when `operation` had been refused until now. */
  accepted(operation: IdpOperation): boolean {
    return this.#refused.delete(operation)
  }

  get any(): boolean {
    return this.#refused.size > 0
  }

  /**
   * For `/readyz`: what is refused, by the OAuth error or status, or
   * undefined when nothing is. `/readyz` is on the public port, so the IdP's
   * own description stays in the error log, which names it with the hint.
   */
  get detail(): string | undefined {
    if (this.#refused.size === 0) return undefined
    const parts = [...this.#refused.values()].map(
      (f) => `${f.operation} (${f.oauthError ?? (f.status === undefined ? f.answer : `HTTP ${f.status}`)})`,
    )
    return `the identity provider refuses the gateway's client credentials: ${parts.join('; ')}; see the error log for the hint`
  }
}
