import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger } from 'fastify'
import type { LogCode } from '../errors.js'
import { RepeatedLines, repeatedField } from '../repeated-lines.js'
import { LaneRunner, type Reached } from './lane-runner.js'

/** A logout token not yet verified: the IdP's keys could not be read when it came. */
export interface HeldToken {
  readonly token: string
  /** The issuer it claims, as configured: what its bounds are kept per. */
  readonly issuer: string
  /** The provider entry it was posted for, for the log. */
  readonly idp: string
  /** When it came, epoch ms: a sign-in of the user that started before then does not stand. */
  readonly at: number
  /** The delivery's logger, so the lines of its outcome carry its request id. */
  readonly log: FastifyBaseLogger
  /** Why the issuer's keys could not be read when it came (`HTTP 503`, a redirect, a network failure), for the log. */
  readonly reason?: string
}

/**
 * What one try at a held token found: its issuer's keys still unreadable
 * (`unreachable`, and so for every token of the issuer), the keys read but
 * the token not yet to be settled (`later`: its `kid` not in a JWKS too
 * recently fetched to fetch again, or another delivery of it at work), or
 * the token dealt with, carried out or refused (`settled`).
 */
export type HeldOutcome = 'unreachable' | 'later' | 'settled'

/**
 * Verifies a held token and, if it passes, carries it out: the attempt of
 * the app that holds it. `stop` aborts when the shutdown's last pass runs
 * out of time: the attempt's fetch of the issuer's keys with it.
 */
export type HeldAttempt<T extends HeldToken> = (held: T, stop: AbortSignal) => Promise<HeldOutcome>

export interface HeldLogoutTokensOptions<T extends HeldToken> {
  readonly attempt: HeldAttempt<T>
  /** How long a token is held, ms: past it the verifier would refuse it as too old. */
  readonly lifeMs: number
  readonly maxPerIssuer?: number
  readonly maxBytesPerIssuer?: number
  /** Monotonic ms; default `performance.now`. */
  readonly clock?: () => number
}

/** Most tokens held per issuer: an IdP ending many users' sessions at once sends one each. */
const MAX_PER_ISSUER = 100
/** Most bytes of tokens held per issuer: 16 tokens at the endpoint's 16 KiB body limit. */
const MAX_BYTES_PER_ISSUER = 256 * 1024 // 256 KiB

/** How soon an issuer's first try comes; doubled per pass its keys stay unreadable, up to HELD_MAX_DELAY. */
const HELD_FIRST_DELAY = 1_000 // 1 s
const HELD_MAX_DELAY = 8_000 // 8 s

/** Given up past `until`, on the monotonic clock. */
export type HeldUntil<T> = T & { readonly until: number }

function lostOnClose(held: readonly unknown[], log: FastifyBaseLogger): void {
  if (held.length === 0) return
  const code: LogCode = 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'
  log.error({ code, reason: 'closed', unverified: held.length }, 'back-channel logout lost')
}

/** Takes the tokens another app held: the app that serves a scope now. */
export type HeldTaker<T> = (held: readonly HeldUntil<T>[]) => void

/** The last pass of the tokens an app holds (`HeldLogoutTokens.lastPass`). */
export type HeldLastPass = (stop: AbortSignal) => Promise<void>

interface Serving<T> {
  readonly take: HeldTaker<T>
  readonly lastPass: HeldLastPass | undefined
}

/**
 * Hands the tokens an app still holds unverified when it closes (a config
 * reload retired it) to the app that serves after it, which verifies them
 * with its own providers: the IdP will not send them again, so dropped
 * they were logouts lost. One per process (server/lasting.ts), as the
 * logouts owed since a store outage are (owed-logouts.ts). Each scope (a
 * frontend's name; `''` without `frontends:`) is handed to the newest app
 * that serves it; with none (the shutdown, or a frontend a reload
 * removed) what is held is dropped, and said to be.
 */
export class HeldHandover<T> {
  readonly #log: FastifyBaseLogger
  /** The takers of each scope, oldest first. */
  readonly #takers = new Map<string, Serving<T>[]>()

  constructor(log: FastifyBaseLogger) {
    this.#log = log
  }

  /**
   * `take` is handed what apps of `scope` pass from now on, until the
   * returned function is called; `lastPass` tries what the app holds once
   * more as the process shuts down (`lastPass` here).
   */
  serve(scope: string, take: HeldTaker<T>, lastPass?: HeldLastPass): () => void {
    const takers = this.#takers.get(scope) ?? []
    const serving = { take, lastPass }
    takers.push(serving)
    this.#takers.set(scope, takers)
    return () => {
      const at = takers.indexOf(serving)
      if (at >= 0) takers.splice(at, 1)
      if (takers.length === 0) this.#takers.delete(scope)
    }
  }

  /** What an app of `scope` held, to its newest other taker; call after taking the app's own out. */
  pass(scope: string, held: readonly HeldUntil<T>[]): void {
    if (held.length === 0) return
    const serving = this.#takers.get(scope)?.at(-1)
    if (serving) serving.take(held)
    else lostOnClose(held, this.#log)
  }

  /**
   * The shutdown's last pass over the tokens held unverified, by the app
   * serving each scope last (server/lasting.ts `lastPass`): an issuer
   * whose keys can be read again during its backoff would otherwise have
   * its tokens dropped untried as the app closes. Ends when they are done
   * or `stop` aborts.
   */
  lastPass(stop: AbortSignal): Promise<void> {
    const passes = [...this.#takers.values()].map((takers) => takers.at(-1)?.lastPass?.(stop))
    return Promise.all(passes).then(() => {})
  }
}

/**
 * Logout tokens that came while the issuer's JWKS could not be fetched.
 * The IdP got a 503 with `Retry-After`, but oidc-provider and Keycloak
 * send a logout token once whatever the answer, so a token refused for
 * want of keys was a logout lost. Each is held as it came, unverified, and
 * verified, with the same checks as any delivery, once the keys can be
 * read: nothing is ended, or used up, before then.
 *
 * Anyone can post a token that claims a configured issuer and client, so
 * what is held is bounded per issuer, in count and in bytes, and for a
 * short life (past which the verifier would refuse it as too old anyway);
 * a token over a bound is lost, as every such token was before. A token is
 * never logged, only its provider's name.
 */
export class HeldLogoutTokens<T extends HeldToken> {
  readonly #held = new Map<string, HeldUntil<T>[]>()
  readonly #bytes = new Map<string, number>()
  readonly #attempt: HeldAttempt<T>
  readonly #life: number
  readonly #maxCount: number
  readonly #maxBytes: number
  readonly #clock: () => number
  // Anyone can post while the keys are out: one line per kind and provider a minute.
  readonly #lines = new RepeatedLines()
  /**
   * The passes over the issuers, each a lane on a backoff of its own.
   * Until 2026-12-07 one delay was shared by every issuer: one whose JWKS
   * stayed away doubled it to 8 s, and a token of another, whose keys
   * could be read again, waited for its next try. Until then too the
   * issuers were tried in turn, and one whose JWKS held its fetch open
   * until the IdP's `timeout` delayed every other issuer's held tokens by
   * that long, each pass.
   */
  readonly #runner = new LaneRunner({
    firstDelay: HELD_FIRST_DELAY,
    maxDelay: HELD_MAX_DELAY,
    lanes: () => this.#held.keys(),
    tryLane: (issuer, stop) => this.#tryIssuer(issuer, stop),
  })

  constructor(options: HeldLogoutTokensOptions<T>) {
    this.#attempt = options.attempt
    this.#life = options.lifeMs
    this.#maxCount = options.maxPerIssuer ?? MAX_PER_ISSUER
    this.#maxBytes = options.maxBytesPerIssuer ?? MAX_BYTES_PER_ISSUER
    this.#clock = options.clock ?? (() => performance.now())
  }

  /** How many tokens are held, of every issuer. */
  get size(): number {
    let size = 0
    for (const held of this.#held.values()) size += held.length
    return size
  }

  /**
   * Holds `token` to verify once its issuer's keys can be read; one held
   * already is held once. `until`: when it is given up, on the monotonic
   * clock, for a token another app held first (`HeldHandover`); default
   * its whole life from now.
   */
  hold(token: T, until = this.#clock() + this.#life): void {
    if (this.#runner.closed) return
    const held = this.#held.get(token.issuer) ?? []
    if (held.some((other) => other.token === token.token)) return
    const bytes = (this.#bytes.get(token.issuer) ?? 0) + Buffer.byteLength(token.token)
    if (held.length >= this.#maxCount || bytes > this.#maxBytes) {
      this.#lost(token, 'full')
      return
    }
    held.push({ ...token, until })
    this.#held.set(token.issuer, held)
    this.#bytes.set(token.issuer, bytes)
    const code: LogCode = 'GATEHOUSE_BACKCHANNEL_LOGOUT_UNVERIFIED'
    const repeated = this.#lines.admit(`${code} ${token.idp}`)
    if (repeated !== undefined)
      token.log.warn(
        {
          code,
          idp: token.idp,
          ...(token.reason === undefined ? {} : { reason: token.reason }),
          ...repeatedField(repeated),
        },
        'back-channel logout held unverified',
      )
    this.#runner.owe(token.issuer)
  }

  /** Stops trying; what is still held is dropped, and said to be. */
  close(log: FastifyBaseLogger): void {
    lostOnClose(this.release(), log)
  }

  /** Stops trying, and gives up what is still held, each with when it is to be given up. */
  release(): HeldUntil<T>[] {
    this.#runner.close()
    const held = [...this.#held.values()].flat()
    this.#held.clear()
    this.#bytes.clear()
    return held
  }

  /**
   * One last pass as the process shuts down (services.ts `lastPass`): every
   * issuer is tried now, whatever its backoff, as its keys may be readable
   * again since it was last found away; an issuer a pass is at, once that
   * pass is done. Ends when they are done or `stop` aborts, whichever comes
   * first: no try starts after that. Once, however many ask.
   */
  lastPass(stop: AbortSignal): Promise<void> {
    return this.#runner.lastPass(stop)
  }

  /**
   * One issuer's part of a pass, its tokens oldest first. A token whose
   * issuer's keys still cannot be read ends the issuer's part: the others
   * would fail alike, each a fetch of a JWKS that is down. One the keys
   * could not settle yet is passed over, so no token held before another
   * (a forged one, its `kid` in no JWKS) holds that one up.
   */
  async #tryIssuer(issuer: string, stop: AbortSignal): Promise<Reached> {
    for (const token of [...(this.#held.get(issuer) ?? [])]) {
      if (this.#runner.closed || stop.aborted) return 'stopped'
      if (this.#clock() >= token.until) {
        this.#drop(issuer, token)
        this.#lost(token, 'unverified')
        continue
      }
      let outcome: HeldOutcome
      try {
        outcome = await this.#attempt(token, stop)
      } catch {
        // The attempt logs its own failures; a token it failed on is not tried again.
        outcome = 'settled'
      }
      // Cut off, not answered: what is left is dropped as the app closes, and said to be.
      if (stop.aborted && outcome !== 'settled') return 'stopped'
      if (outcome === 'unreachable') return 'away'
      if (outcome === 'settled') this.#drop(issuer, token)
    }
    return 'reached'
  }

  #drop(issuer: string, token: HeldUntil<T>): void {
    const held = this.#held.get(issuer) ?? []
    const at = held.indexOf(token)
    if (at < 0) return
    held.splice(at, 1)
    const bytes = (this.#bytes.get(issuer) ?? 0) - Buffer.byteLength(token.token)
    if (held.length > 0) this.#bytes.set(issuer, bytes)
    else {
      this.#held.delete(issuer)
      this.#bytes.delete(issuer)
      this.#runner.forget(issuer)
    }
  }

  #lost(token: HeldToken, reason: 'full' | 'unverified'): void {
    const code: LogCode = 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'
    const repeated = this.#lines.admit(`${code} ${reason} ${token.idp}`)
    if (repeated !== undefined)
      token.log.error(
        { code, idp: token.idp, reason, ...repeatedField(repeated) },
        'back-channel logout lost',
      )
  }
}
