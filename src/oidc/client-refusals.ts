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
   * For `/readyz`: what is refused, by the answer as the gateway classified
   * it (`invalid_client`, `unauthorized`, …, with a refused certificate the
   * TLS alert's name from the gateway's own table), or undefined when
   * nothing is. `/readyz` is on the public port, so none of the IdP's own
   * text goes there, not even its `error`, which it may fill as it likes;
   * that and its description stay in the error log, with the hint.
   */
  get detail(): string | undefined {
    if (this.#refused.size === 0) return undefined
    const parts = [...this.#refused.values()].map(
      (f) => `${f.operation} (${f.answer}${f.tlsAlert ? `, alert ${f.tlsAlert}` : ''})`,
    )
    return `the identity provider refuses the gateway's client credentials: ${parts.join('; ')}; see the error log for the hint`
  }
}
