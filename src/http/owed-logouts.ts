import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger } from 'fastify'
import { isGatehouseError, type LogCode } from '../errors.js'
import type { LogoutClaims } from '../oidc/logout-token.js'
import type { ClientRegistration } from '../types.js'

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

/** How soon the first try comes after the store failed, ms; doubled per failed try up to OWED_MAX_DELAY. */
const OWED_FIRST_DELAY = 250
const OWED_MAX_DELAY = 5_000 // 5 s

/** Most logouts owed at once: each names one verified token of an IdP, never a request of anyone else's. */
const OWED_MAX = 10_000

interface Owed<T> {
  readonly idp: string
  /** What the attempt carries out. */
  readonly what: T
  /** Given up past this, on the monotonic clock. */
  readonly until: number
}

/** Carries out one owed logout: the current app's, which a reload replaces. */
export type OwedAttempt<T> = (what: T) => Promise<LogoutAttempt>

export interface OwedLogoutsOptions {
  readonly log: FastifyBaseLogger
  readonly max?: number
  /** Monotonic ms; default `performance.now`. */
  readonly clock?: () => number
}

/**
 * Back-channel logouts verified but not carried out because the session
 * store did not answer. The IdP got a 503 with `Retry-After`, but
 * oidc-provider and Keycloak deliver a logout token once, whatever the
 * answer: a logout dropped here would leave the user's sessions running
 * once the store was back. So each is tried again, on one timer, until
 * the store answers, for as long as a session it names could live.
 *
 * One per process, outliving a config reload as the stores do
 * (server/lasting.ts): what is owed is data (`what`), carried out by the
 * attempt of the app that serves now (`serve`), so the app a reload
 * builds takes over what the replaced one owed. A restart drops what is
 * owed, and says so.
 */
export class OwedLogouts<T> {
  readonly #owed = new Map<string, Owed<T>>()
  readonly #log: FastifyBaseLogger
  readonly #max: number
  readonly #clock: () => number
  /**
   * The attempts of the apps serving, oldest first: the newest carries
   * out what is owed. An app a failed reload built and closed takes its
   * own out, and the one still serving carries on.
   */
  readonly #attempts = new Set<OwedAttempt<T>>()
  #timer: NodeJS.Timeout | undefined
  #round: Promise<void> | undefined
  #delay = OWED_FIRST_DELAY
  #closed = false

  constructor(options: OwedLogoutsOptions) {
    this.#log = options.log
    this.#max = options.max ?? OWED_MAX
    this.#clock = options.clock ?? (() => performance.now())
  }

  get size(): number {
    return this.#owed.size
  }

  /**
   * Carries out what is owed with `attempt` from now on, until the
   * returned function is called (by the app that served it, as it
   * closes) or a later `serve` takes over.
   */
  serve(attempt: OwedAttempt<T>): () => void {
    const serving = (what: T) => attempt(what)
    this.#attempts.add(serving)
    if (this.#owed.size > 0) this.#schedule()
    return () => void this.#attempts.delete(serving)
  }

  /** The newest serving app's attempt. */
  get #attempt(): OwedAttempt<T> | undefined {
    return [...this.#attempts].at(-1)
  }

  /**
   * Owes the logout named `key` (its replay key: one per token and
   * client), to be carried out once the store answers, for `budgetMs`
   * (past it every session it could name has expired). A token owed
   * already is owed once.
   */
  add(key: string, owed: { idp: string; what: T; budgetMs: number }, log: FastifyBaseLogger): void {
    const { idp } = owed
    if (this.#closed || this.#owed.has(key)) return
    if (this.#owed.size >= this.#max) {
      const code: LogCode = 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'
      log.error({ code, idp, reason: 'full', owed: this.#owed.size }, 'back-channel logout lost')
      return
    }
    this.#owed.set(key, { idp, what: owed.what, until: this.#clock() + owed.budgetMs })
    const code: LogCode = 'GATEHOUSE_BACKCHANNEL_LOGOUT_OWED'
    log.warn({ code, idp }, 'back-channel logout owed')
    this.#schedule()
  }

  /** Stops trying; what is still owed is dropped, and said to be. */
  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
    if (this.#owed.size > 0) {
      const code: LogCode = 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'
      this.#log.error({ code, reason: 'closed', owed: this.#owed.size }, 'back-channel logout lost')
    }
    this.#owed.clear()
  }

  #schedule(): void {
    if (this.#closed || this.#attempt === undefined) return
    if (this.#timer !== undefined || this.#round !== undefined) return
    // Unref'd: what is owed must not hold a closing process open; close() says what it drops.
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#round = this.#tryAll().finally(() => {
        this.#round = undefined
        if (this.#owed.size > 0) this.#schedule()
      })
    }, this.#delay).unref()
  }

  /**
   * One pass over what is owed, oldest first. The first try the store
   * fails ends the pass: the others would fail alike, and one failing
   * call per pass is all an outage costs.
   */
  async #tryAll(): Promise<void> {
    for (const [key, owed] of this.#owed) {
      // Closed, or between apps: the next app's serve() starts a pass.
      const attempt = this.#attempt
      if (this.#closed || attempt === undefined) return
      if (this.#clock() >= owed.until) {
        this.#owed.delete(key)
        this.#lost(owed, 'expired')
        continue
      }
      let outcome: LogoutAttempt
      try {
        outcome = await attempt(owed.what)
      } catch (err) {
        if (isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE') {
          this.#delay = Math.min(this.#delay * 2, OWED_MAX_DELAY)
          return
        }
        this.#owed.delete(key)
        this.#lost(owed, isGatehouseError(err) ? err.code : 'error')
        continue
      }
      this.#delay = OWED_FIRST_DELAY
      // Another delivery of the token is at work, and may yet fail: look again next pass.
      if (outcome === 'held') continue
      this.#owed.delete(key)
      if (typeof outcome === 'number')
        this.#log.info(
          { idp: owed.idp, ended: outcome },
          'back-channel logout carried out once the store was back',
        )
    }
  }

  #lost(owed: Owed<T>, reason: string): void {
    const code: LogCode = 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'
    this.#log.error({ code, idp: owed.idp, reason }, 'back-channel logout lost')
  }
}
