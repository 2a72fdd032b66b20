import type { FastifyBaseLogger } from 'fastify'
import { gatehouseError, isGatehouseError } from '../errors.js'
import type { OidcClient } from '../oidc/client.js'
import { type LogoutClaims, type LogoutTokenVerifier, refusalKind } from '../oidc/logout-token.js'
import { RepeatedLines, repeatedField } from '../repeated-lines.js'

/** A verified logout token: the provider that signed it, and its claims. */
export interface Verified {
  readonly oidc: OidcClient
  readonly claims: LogoutClaims
}

/**
 * Verifies a back-channel logout's token against the providers it may be
 * from (§2.6), and logs the refusals an operator must hear of: one per
 * app, as the verifiers it makes read that app's providers.
 */
export class LogoutTokenChecks {
  /** By provider, with the metadata each was made from: a reload may discover the IdP anew (rediscovery.ts). */
  readonly #verifiers = new Map<
    string,
    { readonly metadata: object; readonly verifier: LogoutTokenVerifier }
  >()
  // Anyone can post here: junk tokens must not write a warning each.
  readonly #refusalLines: RepeatedLines
  readonly #now: () => number

  constructor(now: () => number) {
    this.#now = now
    this.#refusalLines = new RepeatedLines(undefined, now)
  }

  /** The verified claims, by the one of `candidates` that signed the token. */
  async verified(token: string, candidates: readonly OidcClient[], stop?: AbortSignal): Promise<Verified> {
    let failure: unknown = gatehouseError(
      'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN',
      'The logout token is not valid: no configured provider has its issuer and audience.',
    )
    for (const oidc of candidates) {
      const metadata = oidc.metadata
      if (!metadata) {
        failure = gatehouseError('GATEHOUSE_ERR_IDP_UNAVAILABLE')
        continue
      }
      if (!metadata.jwks_uri) {
        // Not an outage to wait out: the IdP must publish its keys first.
        failure = gatehouseError(
          'GATEHOUSE_ERR_IDP_INCOMPATIBLE',
          'The identity provider advertises no jwks_uri (OpenID Connect Discovery 1.0 §3 requires one), so no logout token of its can be verified.',
        )
        continue
      }
      const made = this.#verifiers.get(oidc.name)
      let verifier = made?.metadata === metadata ? made.verifier : undefined
      if (!verifier) {
        verifier = oidc.logoutTokenVerifier(
          {
            issuer: metadata.issuer,
            jwksUri: metadata.jwks_uri,
            idTokenAlgorithms: metadata.id_token_signing_alg_values_supported,
          },
          this.#now,
        )
        this.#verifiers.set(oidc.name, { metadata, verifier })
      }
      try {
        return { oidc, claims: await verifier.verify(token, stop) }
      } catch (err) {
        if (!isGatehouseError(err)) throw err
        failure = err
      }
    }
    throw failure
  }

  /**
   * The IdP believes the user signed out; a refusal here leaves their
   * sessions running, so an operator must hear why, and with several
   * providers whose: `named`, the entries whose issuer and client id the
   * token claimed (or whose own path it came to), by their config names.
   * The reason is ours, naming the check that failed, never the token's
   * contents: none matching, nothing of its claims is named. The endpoint
   * is unauthenticated, so one line per provider and reason a minute; the
   * providers in the key, as with the reason alone corp's refusals in the
   * minute partner's began were counted as more of partner's, never
   * written. Still a bounded set: the names are the config's.
   */
  refused<E>(log: FastifyBaseLogger, err: E, named: readonly OidcClient[] = []): E {
    if (isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN') {
      const idp = named.map((oidc) => oidc.name).join(',')
      const repeated = this.#refusalLines.admit(`${idp} ${refusalKind(err)}`)
      if (repeated !== undefined)
        log.warn(
          {
            code: err.code,
            ...(idp === '' ? {} : { idp }),
            reason: err.message,
            ...repeatedField(repeated),
          },
          'logout token refused',
        )
    }
    return err
  }
}

/**
 * The issuer's keys could not be fetched (its JWKS unreachable, too slow,
 * not a 200; or the provider not discovered yet): every token of the
 * issuer fails alike until they can. Not the wait for a `kid` missing
 * from a JWKS fetched too recently to fetch again, which has its own
 * `Retry-After` (logout-token.ts): the keys were read.
 */
export function unreachable(err: unknown): boolean {
  return isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_IDP_UNAVAILABLE' && err.retryAfter === undefined
}

/**
 * The token's `kid` is missing from a JWKS fetched too recently to fetch
 * again (logout-token.ts): a key the IdP rotated in just after the gateway
 * read its keys for another token. Its `Retry-After` is jose's cooldown.
 */
export function awaitingKey(err: unknown): boolean {
  return isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_IDP_UNAVAILABLE' && err.retryAfter !== undefined
}
