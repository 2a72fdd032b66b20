import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger } from 'fastify'
import { isGatehouseError, type LogCode } from '../errors.js'
import type { IdpAnswer } from '../oidc/answers.js'
import type { IdentityProviders } from '../oidc/providers.js'
import { idpFailureOf } from '../oidc/translate.js'
import type { ClientRegistration } from '../types.js'

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
 * removed it, or gave its name another client), and it goes to no one else.
 */
export type RevokeAttempt = (owed: OwedRevocation) => Promise<'revoked' | 'gone'>

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

/** How soon the first try comes after the IdP failed, ms; doubled per failed try up to OWED_MAX_DELAY. */
const OWED_FIRST_DELAY = 1_000 // 1 s
const OWED_MAX_DELAY = 30_000 // 30 s
/** How long a revocation is owed, ms: an IdP down longer has the grant lapse with its refresh token, as before. */
const OWED_BUDGET = 3_600_000 // 1 h
/** Most revocations owed at once: each holds a refresh token in memory. */
const OWED_MAX = 10_000

interface Owed {
  readonly what: OwedRevocation
  /** Given up past this, on the monotonic clock. */
  readonly until: number
}

export interface OwedRevocationsOptions {
  readonly log: FastifyBaseLogger
  readonly max?: number
  /** Monotonic ms; default `performance.now`. */
  readonly clock?: () => number
}

/**
 * Refresh tokens of ended sessions (a logout, a sign-in over one) whose
 * revocation (RFC 7009) failed because the IdP did not answer. The
 * session's record is gone, and with it the only copy of the token, so a
 * grant whose revocation failed once lived on at the IdP until it expired
 * (oidc-provider keeps an `offline_access` grant through its own
 * end-session too). Each is tried again, on one timer, until the IdP
 * answers, for `OWED_BUDGET`.
 *
 * One per process, outliving a config reload as the stores do
 * (server/lasting.ts): the app a reload builds takes over what the
 * replaced one owed (`serve`). Held in memory only, never in the store,
 * whose copies end up in backups; a restart drops what is owed, and says so.
 */
export class OwedRevocations {
  readonly #owed: Owed[] = []
  readonly #log: FastifyBaseLogger
  readonly #max: number
  readonly #clock: () => number
  /** The attempts of the apps serving, oldest first: the newest carries out what is owed. */
  readonly #attempts = new Set<RevokeAttempt>()
  #timer: NodeJS.Timeout | undefined
  #round: Promise<void> | undefined
  #delay = OWED_FIRST_DELAY
  #closed = false

  constructor(options: OwedRevocationsOptions) {
    this.#log = options.log
    this.#max = options.max ?? OWED_MAX
    this.#clock = options.clock ?? (() => performance.now())
  }

  get size(): number {
    return this.#owed.length
  }

  /** Carries out what is owed with `attempt` until the returned function is called, or a later `serve` takes over. */
  serve(attempt: RevokeAttempt): () => void {
    const serving: RevokeAttempt = (what) => attempt(what)
    this.#attempts.add(serving)
    if (this.#owed.length > 0) this.#schedule()
    return () => void this.#attempts.delete(serving)
  }

  /** Owes the revocation of `what`, which the IdP did not answer. */
  add(what: OwedRevocation, log: FastifyBaseLogger): void {
    if (this.#closed) return
    if (this.#owed.length >= this.#max) {
      const code: LogCode = 'GATEHOUSE_REVOCATION_LOST'
      log.error(
        { code, idp: what.idp, reason: 'full', owed: this.#owed.length },
        'refresh token revocation lost',
      )
      return
    }
    this.#owed.push({ what, until: this.#clock() + OWED_BUDGET })
    const code: LogCode = 'GATEHOUSE_REVOCATION_OWED'
    log.warn({ code, idp: what.idp }, 'refresh token revocation owed')
    this.#schedule()
  }

  /** Stops trying; what is still owed is dropped, and said to be. */
  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
    if (this.#owed.length > 0) {
      const code: LogCode = 'GATEHOUSE_REVOCATION_LOST'
      this.#log.error({ code, reason: 'closed', owed: this.#owed.length }, 'refresh token revocation lost')
    }
    this.#owed.length = 0
  }

  #schedule(): void {
    if (this.#closed || this.#attempts.size === 0) return
    if (this.#timer !== undefined || this.#round !== undefined) return
    // Unref'd: what is owed must not hold a closing process open; close() says what it drops.
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#round = this.#tryAll().finally(() => {
        this.#round = undefined
        if (this.#owed.length > 0) this.#schedule()
      })
    }, this.#delay).unref()
  }

  /**
   * One pass over what is owed, oldest first within each IdP, each IdP's
   * tried alongside the others': a revocation an IdP holds open until its
   * `timeout` then holds only that IdP's. A token whose IdP does not
   * answer ends the pass for that IdP's others, which would fail alike (one
   * failing call per IdP and pass is all an outage costs), but not for
   * another provider's: one IdP down for the hour a revocation is owed
   * must not hold every other provider's grants live behind its own.
   */
  async #tryAll(): Promise<void> {
    const byIssuer = new Map<string, Owed[]>()
    for (const owed of this.#owed) {
      const issuer = owed.what.registration?.issuer ?? owed.what.idp
      const queue = byIssuer.get(issuer)
      if (queue) queue.push(owed)
      else byIssuer.set(issuer, [owed])
    }
    const answered = await Promise.all([...byIssuer.values()].map((queue) => this.#tryIssuer(queue)))
    this.#delay = answered.includes(false) ? Math.min(this.#delay * 2, OWED_MAX_DELAY) : OWED_FIRST_DELAY
  }

  /** One IdP's part of a pass, oldest first; false when the IdP did not answer. */
  async #tryIssuer(queue: readonly Owed[]): Promise<boolean> {
    for (const owed of queue) {
      // Closed, or between apps: the next app's serve() starts a pass.
      const attempt = [...this.#attempts].at(-1)
      if (this.#closed || attempt === undefined) return true
      if (this.#clock() >= owed.until) {
        this.#remove(owed)
        this.#lost(owed, 'expired')
        continue
      }
      let outcome: 'revoked' | 'gone'
      try {
        outcome = await attempt(owed.what)
      } catch (err) {
        if (this.#closed) return true
        if (unanswered(err)) return false
        this.#remove(owed)
        this.#lost(owed, refusal(err))
        continue
      }
      this.#remove(owed)
      if (outcome === 'gone') this.#lost(owed, 'provider_gone')
      else
        this.#log.info(
          { idp: owed.what.idp },
          'refresh token revoked once the identity provider answered again',
        )
    }
    return true
  }

  #remove(owed: Owed): void {
    const at = this.#owed.indexOf(owed)
    if (at !== -1) this.#owed.splice(at, 1)
  }

  #lost(owed: Owed, reason: string): void {
    const code: LogCode = 'GATEHOUSE_REVOCATION_LOST'
    this.#log.error({ code, idp: owed.what.idp, reason }, 'refresh token revocation lost')
  }
}

/**
 * Revokes an owed token at the provider that issued it among `providers`:
 * every provider of the app (an ended session's may be any frontend's),
 * never one a reload gave its name to since.
 */
export function revokingWith(providers: IdentityProviders): RevokeAttempt {
  return async (owed) => {
    const oidc = providers.ofSession(owed)
    if (oidc === undefined) return 'gone'
    await oidc.revoke(owed.refreshToken)
    return 'revoked'
  }
}
