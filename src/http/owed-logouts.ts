import type { FastifyBaseLogger } from 'fastify'
import { isGatehouseError } from '../errors.js'
import type { LogoutClaims } from '../oidc/logout-token.js'
import type { ClientRegistration } from '../types.js'
import { type OwedOptions, type RetryPolicy, RetryQueue } from './retry-queue.js'

/** A logout owed: the client a verified token is for, and what it names. */
export interface OwedLogout {
  readonly registration: ClientRegistration
  /** The provider entry that verified the token (for the log, and whose indexes are read besides). */
  readonly idp: string
  readonly claims: LogoutClaims
  /** Its replay key (backchannel-logout.ts). */
  readonly seen: string
  /** When its token came, epoch ms: a sign-in of the user that started before then does not stand. */
  readonly at: number
}

/** What one try at carrying a logout out found: sessions ended, done by another delivery, or another at work. */
export type LogoutAttempt = number | 'done' | 'owed' | 'held'

interface Owed<T> {
  readonly idp: string
  /** The IdP that sent it, whose share of the bound it takes. */
  readonly issuer: string
  /** What the attempt carries out. */
  readonly what: T
}

/**
 * Carries out one owed logout: the current app's, which a reload replaces.
 * `stop` aborts when the shutdown's last pass runs out of time: the
 * attempt then stops waiting on the store, and starts no other call.
 */
export type OwedAttempt<T> = (what: T, stop: AbortSignal) => Promise<LogoutAttempt>

/** Each owed logout names one verified token of an IdP, never a request of anyone else's: 10,000 at most by default, over every IdP. */
export type OwedLogoutsOptions = OwedOptions

function carryingOut<T>(): RetryPolicy<Owed<T>, OwedAttempt<T>> {
  return {
    firstDelay: 250, // ms after the store failed, doubled per failed pass
    maxDelay: 5_000, // 5 s
    ownerOf: (owed) => owed.issuer,
    laneOf: () => 'store',
    idpOf: (owed) => owed.idp,
    tryOne: async (owed, attempt, log, stop) => {
      let outcome: LogoutAttempt
      try {
        outcome = await attempt(owed.what, stop)
      } catch (err) {
        // Cut off by the drain's end, not carried out: still owed, and dropped with the rest, said to be.
        if (stop.aborted) return 'outage'
        if (isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE') return 'outage'
        return { lost: isGatehouseError(err) ? err.code : 'error' }
      }
      // Another delivery of the token is at work, and may yet fail: look again next pass.
      if (outcome === 'held') return 'again'
      if (typeof outcome === 'number')
        log.info({ idp: owed.idp, ended: outcome }, 'back-channel logout carried out once the store was back')
      return 'done'
    },
    owed: { code: 'GATEHOUSE_BACKCHANNEL_LOGOUT_OWED', msg: 'back-channel logout owed' },
    lost: { code: 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST', msg: 'back-channel logout lost' },
  }
}

/**
 * Back-channel logouts verified but not carried out because the session
 * store did not answer. The IdP got a 503 with `Retry-After`, but
 * oidc-provider and Keycloak deliver a logout token once, whatever the
 * answer: a logout dropped here would leave the user's sessions running
 * once the store was back. So each is tried again (retry-queue.ts) until
 * the store answers, for as long as a session it names could live.
 *
 * All are one lane: the store is the one peer they wait on, and the
 * first try it fails ends the pass, as the others would fail alike (one
 * failing call per pass is all an outage costs). The bound is shared by
 * issuer: an IdP that sends many logouts through an outage gives up its
 * own oldest when the bound is reached, never another IdP's.
 *
 * One per process, outliving a config reload as the stores do
 * (server/lasting.ts): what is owed is data (`what`), carried out by the
 * attempt of the app that serves now (`serve`), so the app a reload
 * builds takes over what the replaced one owed. A shutdown with drain
 * time left makes one last pass (`lastPass`), as the store may have come
 * back during the backoff; a restart drops what is still owed, and says so.
 */
export class OwedLogouts<T> {
  readonly #queue: RetryQueue<Owed<T>, OwedAttempt<T>>

  constructor(options: OwedLogoutsOptions) {
    this.#queue = new RetryQueue(carryingOut<T>(), options)
  }

  get size(): number {
    return this.#queue.size
  }

  /**
   * Carries out what is owed with `attempt` from now on, until the
   * returned function is called (by the app that served it, as it
   * closes) or a later `serve` takes over.
   */
  serve(attempt: OwedAttempt<T>): () => void {
    return this.#queue.serve(attempt)
  }

  /**
   * Owes the logout named `key` (its replay key: one per token and
   * client), sent by `issuer` (default: the provider entry `idp`), to be
   * carried out once the store answers, for `budgetMs` (past it every
   * session it could name has expired). A token owed already is owed once.
   */
  add(
    key: string,
    owed: { idp: string; issuer?: string; what: T; budgetMs: number },
    log: FastifyBaseLogger,
  ): void {
    const { idp, what, budgetMs } = owed
    this.#queue.add({ idp, issuer: owed.issuer ?? idp, what }, budgetMs, log, key)
  }

  /**
   * One last pass as the process shuts down: what is owed is tried now,
   * whatever the backoff, until `stop` aborts (the drain is nearly out),
   * each try within the store's own timeout too. The try under way then
   * stops waiting on the store at once, and what it had not carried out
   * stays owed.
   */
  lastPass(stop: AbortSignal): Promise<void> {
    return this.#queue.lastPass(stop)
  }

  /** Stops trying; what is still owed is dropped, and said to be. */
  close(): void {
    this.#queue.close()
  }
}
