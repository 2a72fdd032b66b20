import type { FastifyBaseLogger } from 'fastify'
import { isGatehouseError } from '../errors.js'
import type { IdpAnswer } from '../oidc/answers.js'
import type { IdentityProviders } from '../oidc/providers.js'
import { idpFailureOf } from '../oidc/translate.js'
import type { ClientRegistration } from '../types.js'
import { type OwedOptions, type RetryPolicy, RetryQueue } from './retry-queue.js'

/**
 * A refresh token of an ended session whose revocation the IdP did not
 * answer: the provider that issued it, by name and registration, so the
 * app serving when it is tried again revokes it only at that provider.
 */
export interface OwedRevocation {
  readonly idp: string
  readonly registration: ClientRegistration | undefined
  readonly refreshToken: string
}

/**
 * Revokes one owed token with the providers of the app serving now:
 * `gone` when no provider there is the one that issued it (a reload
 * removed it, or gave its name another client), and it goes to no one
 * else. `stop` aborts the call when a shutdown's last pass runs out of time.
 */
export type RevokeAttempt = (owed: OwedRevocation, stop?: AbortSignal) => Promise<'revoked' | 'gone'>

/**
 * The answers of an IdP that did not answer the revocation itself: a
 * revocation that failed so is owed. Any other (RFC 7009 §2.2.1: a 400
 * with an RFC 6749 §5.2 error such as `unsupported_token_type`, a bare
 * 4xx) is the IdP's answer to it, and tried again it refuses alike.
 */
const OUTAGES: ReadonlySet<IdpAnswer> = new Set([
  'retry_later',
  'server_error',
  'timeout',
  'network',
  'unparseable',
])

/**
 * Whether a revocation failed with `err` because the IdP did not answer
 * (down, 5xx, 429, a timeout): what is owed. A refusal is translated to
 * `GATEHOUSE_ERR_IDP_UNAVAILABLE` too, since the logout proceeds on it,
 * but is no outage: until 2026-12-07 it was owed, and tried again for an hour.
 */
export function unanswered(err: unknown): boolean {
  if (!isGatehouseError(err) || err.code !== 'GATEHOUSE_ERR_IDP_UNAVAILABLE') return false
  const failure = idpFailureOf(err)
  return failure === undefined || OUTAGES.has(failure.answer)
}

/** Why a revocation that failed with `err` is given up: the IdP's answer, or the catalogue code. */
function refusal(err: unknown): string {
  if (!isGatehouseError(err)) return 'error'
  return err.code === 'GATEHOUSE_ERR_IDP_UNAVAILABLE' ? (idpFailureOf(err)?.answer ?? err.code) : err.code
}

/** How long a revocation is owed, ms: an IdP down longer has the grant lapse with its refresh token, as before. */
const OWED_BUDGET = 3_600_000 // 1 h

/** The IdP a token is owed to: the issuer that issued it, whichever provider names it. */
const issuerOf = (what: OwedRevocation): string => what.registration?.issuer ?? what.idp

const REVOKING: RetryPolicy<OwedRevocation, RevokeAttempt> = {
  firstDelay: 1_000, // 1 s after the IdP failed, doubled per failed pass
  maxDelay: 30_000, // 30 s
  ownerOf: issuerOf,
  laneOf: issuerOf,
  idpOf: (what) => what.idp,
  tryOne: async (what, attempt, log, stop) => {
    let outcome: 'revoked' | 'gone'
    try {
      outcome = await attempt(what, stop)
    } catch (err) {
      return unanswered(err) ? 'outage' : { lost: refusal(err) }
    }
    if (outcome === 'gone') return { lost: 'provider_gone' }
    log.info({ idp: what.idp }, 'refresh token revoked once the identity provider answered again')
    return 'done'
  },
  owed: { code: 'GATEHOUSE_REVOCATION_OWED', msg: 'refresh token revocation owed' },
  lost: { code: 'GATEHOUSE_REVOCATION_LOST', msg: 'refresh token revocation lost' },
}

/** Each owed revocation holds a refresh token in memory: 10,000 at most by default, over every IdP. */
export type OwedRevocationsOptions = OwedOptions

/**
 * Refresh tokens of ended sessions (a logout, a sign-in over one) whose
 * revocation (RFC 7009) failed because the IdP did not answer. The
 * session's record is gone, and with it the only copy of the token, so a
 * grant whose revocation failed once lived on at the IdP until it expired
 * (oidc-provider keeps an `offline_access` grant through its own
 * end-session too). Each is tried again (retry-queue.ts) until the IdP
 * answers, for `OWED_BUDGET`.
 *
 * Each IdP's are a lane of their own, on a backoff of its own: one IdP
 * down for the hour a revocation is owed, or holding one open until its
 * `timeout`, must not hold every other provider's grants live behind its
 * own, nor have their first try wait its 30 s. The bound is
 * shared by issuer likewise: an IdP down through many logouts gives up
 * its own oldest when the bound is reached, never another IdP's.
 *
 * One per process, outliving a config reload as the stores do
 * (server/lasting.ts): the app a reload builds takes over what the
 * replaced one owed (`serve`). Held in memory only, never in the store,
 * whose copies end up in backups. A shutdown with drain time left makes
 * one last pass over every IdP's (`lastPass`), as one may have come back
 * during its backoff; a restart drops what is still owed, and says so.
 */
export class OwedRevocations {
  readonly #queue: RetryQueue<OwedRevocation, RevokeAttempt>

  constructor(options: OwedRevocationsOptions) {
    this.#queue = new RetryQueue(REVOKING, options)
  }

  get size(): number {
    return this.#queue.size
  }

  /** Carries out what is owed with `attempt` until the returned function is called, or a later `serve` takes over. */
  serve(attempt: RevokeAttempt): () => void {
    return this.#queue.serve(attempt)
  }

  /** Owes the revocation of `what`, which the IdP did not answer. */
  add(what: OwedRevocation, log: FastifyBaseLogger): void {
    this.#queue.add(what, OWED_BUDGET, log)
  }

  /**
   * One last pass as the process shuts down: every IdP's owed revocations
   * are tried now, whatever their backoff, until `stop` aborts (the drain
   * is nearly out), each call within its IdP's `timeout` too.
   */
  lastPass(stop: AbortSignal): Promise<void> {
    return this.#queue.lastPass(stop)
  }

  /** Stops trying; what is still owed is dropped, and said to be. */
  close(): void {
    this.#queue.close()
  }
}

/**
 * Revokes an owed token at the provider that issued it among `providers`:
 * every provider of the app (an ended session's may be any frontend's),
 * never one a reload gave its name to since.
 */
export function revokingWith(providers: IdentityProviders): RevokeAttempt {
  return async (owed, stop) => {
    const oidc = providers.ofSession(owed)
    if (oidc === undefined) return 'gone'
    await oidc.revoke(owed.refreshToken, stop)
    return 'revoked'
  }
}
