import { isDeepStrictEqual } from 'node:util'
import { SHORTHAND_PROVIDER } from '../config/schema.js'
import type { IdentityProviderConfig } from '../config/types.js'
import type { IdpOperation } from './answers.js'
import type { IdpFailure } from './translate.js'

/**
 * Which calls the IdPs refuse the gateway's own credentials for right now,
 * by provider: set by a refusal, cleared by the next call of the same kind
 * that the same provider authenticates (another provider accepting its own
 * credentials says nothing of this one's). Bounded by the providers and
 * the operations of the classification.
 */
export class ClientRefusals {
  readonly #refused = new Map<string, { readonly idp: string; readonly failure: IdpFailure }>()

  refused(idp: string, failure: IdpFailure): void {
    this.#refused.set(key(idp, failure.operation), { idp, failure })
  }

  /** True when `idp` had refused `operation` until now. */
  accepted(idp: string, operation: IdpOperation): boolean {
    return this.#refused.delete(key(idp, operation))
  }

  /**
   * Forgets the refusals of providers not in `names`: a reload removed
   * them, so no call of theirs will ever be accepted to clear them, or
   * changed their credentials, so what was refused is no longer sent.
   */
  keepOnly(names: readonly string[]): void {
    for (const [at, { idp }] of this.#refused) if (!names.includes(idp)) this.#refused.delete(at)
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
      ({ idp, failure: f }) =>
        // The `oidc:` shorthand's one provider needs no name.
        `${f.operation}${idp === SHORTHAND_PROVIDER ? '' : ` at ${idp}`} (${f.answer}${f.tlsAlert ? `, alert ${f.tlsAlert}` : ''})`,
    )
    return `the identity provider refuses the gateway's client credentials: ${parts.join('; ')}; see the error log for the hint`
  }
}

/**
 * The providers of `next` that present the same credentials as in
 * `running`, by name: the others' refusals were of credentials a reload
 * took out of use (`ClientRefusals.keepOnly`).
 */
export function sameCredentials(
  running: readonly IdentityProviderConfig[],
  next: readonly IdentityProviderConfig[],
): string[] {
  const credentials = ({
    issuer,
    clientId,
    clientAuth,
    clientSecret,
    clientKey,
    tls,
  }: IdentityProviderConfig) => ({
    issuer,
    clientId,
    clientAuth,
    clientSecret,
    clientKey,
    tls,
  })
  return next
    .filter((provider) => {
      const before = running.find((p) => p.name === provider.name)
      return before !== undefined && isDeepStrictEqual(credentials(before), credentials(provider))
    })
    .map((provider) => provider.name)
}

function key(idp: string, operation: IdpOperation): string {
  return `${idp} ${operation}`
}
