import type { Span } from '@opentelemetry/api'
import { type GatehouseError, gatehouseError, isGatehouseError } from '../errors.js'
import { type LateAnswer, lateAnswerOf } from '../oidc/late-answer.js'
import { providerGone } from '../oidc/providers.js'
import { rotatedRefreshToken } from '../oidc/rotated.js'
import { expiredOnArrival } from '../oidc/token-lifetime.js'
import { idpFailureOf } from '../oidc/translate.js'
import { endedElsewhere, sessionEnded } from '../session/log-id.js'
import type { SessionData, SessionRef, SessionStore } from '../session/types.js'
import { ATTR, inSpan, tracing, waited } from '../tracing/spans.js'
import type { DpopKey, SessionIssuer, TokenAudience, TokenSet } from '../types.js'
import { withinGrant } from './audience.js'
import { exchangeOutcome } from './exchange-outcome.js'
import { type Exchange, type ExchangeStepDeps, exchangeStep } from './exchange-step.js'
import { exchangedFromCurrent } from './exchange-subject.js'
import { leavesHeld } from './held-token.js'
import type { LateWrites } from './late-writes.js'
import { cooldownKey, tokenFingerprint } from './refresh-cooldown.js'
import { livesShort, refreshMargin } from './refresh-margin.js'
import type { RefreshObserver } from './refresh-observer.js'
import { type RefreshOutcome, refreshOutcome } from './refresh-outcome.js'
import { type Coordination, refreshScope } from './refresh-scope.js'
import { RefusalMemory } from './refusal-memory.js'
import { RefusedClient } from './refused-client.js'
import { FRESH, goneMeanwhile, keeping, LATE_WRITE_BUDGET, RotatedWrites } from './rotated-writes.js'
import { SingleFlight } from './single-flight.js'
import { merged, tokenFor } from './token-set.js'
import type { LockService, RefreshCooldowns } from './types.js'
import { DEFAULT_UNAVAILABLE_LIMIT, UnavailableLimit } from './unavailable-limit.js'

export interface UserTokensOptions {
  readonly store: SessionStore
  readonly locks: LockService
  /**
   * Redeems refresh tokens, and exchanges tokens for `token: exchange`
   * routes (needed only with those): at the session's provider, while it
   * still has the issuer and client id that issued them
   * (`IdentityProviders`), or one client that ignores the session.
   */
  readonly oidc: {
    refresh(
      current: TokenSet,
      audience?: TokenAudience,
      dpopKey?: DpopKey,
      session?: SessionIssuer,
    ): Promise<TokenSet>
    exchange?: Exchange
    /** Whether the session's provider presents another client certificate than `certificate` now (`IdentityProviders`). */
    certificateChanged?(session: SessionIssuer, certificate: string): boolean
  }
  /** Refresh this long before the access token expires, ms. */
  readonly refreshBefore: number
  /** Longest wait on another instance's refresh, ms. */
  readonly refreshWait: number
  /** Initial lifetime of the cluster refresh lock, ms; it is renewed while held. */
  readonly lockTtl: number
  /**
   * How long a session's refreshes may find the IdP unavailable, and
   * nothing else, before it ends, ms; default 5 min (`tokens.unavailableLimit`).
   */
  readonly unavailableLimit?: number
  /**
   * The sessions whose IdP calls are failing (their back-off and their
   * count towards `unavailableLimit`), shared by the configs a reload swaps
   * in so that a reload forgets neither; one of its own when absent.
   */
  readonly failing?: UnavailableLimit
  /**
   * Per session, the store of a refresh's answer that came after its
   * timeout, while awaited (late-answer.ts): shared like `failing`, so the
   * token parts a reload swaps in know the session's refresh is still out.
   */
  readonly lateWrites?: LateWrites
  /**
   * The providers refusing the gateway's own credentials, shared with the
   * client tokens, whose calls authenticate the same way; one of its own when absent.
   */
  readonly refusedClient?: RefusedClient
  readonly now: () => number
  /** `single-flight` when absent; the others exist for the test suite only (`Coordination`). */
  readonly coordination?: Coordination
  /**
   * Bounds refreshes forced by upstreams that refuse tokens (`replaceRefused`):
   * per session and route, one refused token per `ms` may force one.
   * Absent, or `ms` 0: every refused token may.
   */
  readonly cooldown?: { readonly store: RefreshCooldowns; readonly ms: number }
  readonly observer?: RefreshObserver
  /**
   * How many route audiences there may be (the routes configured, which a
   * reload may change): a request may wait through one flight for each
   * before its own. Default 12.
   */
  readonly audiences?: () => number
  /**
   * Told of each session a refresh ends, once its record is deleted: what
   * the process keeps of it beyond the store goes too (the DPoP key
   * caches, src/dpop/held-keys.ts).
   */
  readonly ended?: (id: string, key?: DpopKey) => void
}

/** What one flight leaves behind: the session after it, and the audience the IdP refused, if any. */
interface FlightResult {
  readonly session: SessionData
  readonly refused?: { readonly key: string; readonly error: GatehouseError }
}

/**
 * Flights a caller may go through before its own audience is served, past
 * one per configured audience (`UserTokensOptions.audiences`): each round
 * after the first follows a flight that served another audience, so more
 * only happen under a failing IdP.
 */
const SPARE_ROUNDS = 4

/** Why a session's refresh is not tried while the answer to its last is awaited (late-answer.ts). */
const LATE_ANSWER_AWAITED =
  "The identity provider has not yet answered this session's last refresh, which timed out; its answer is still awaited (oidc.lateAnswerWait), and the session stays. Retry later."

/** Why a session's refresh is not tried while its rotated tokens wait for the store to take them. */
const ROTATED_UNSTORED =
  "The session store refused this session's new tokens from the identity provider. They are held by this instance and stored as soon as the store takes writes again; the session stays. Retry later."

/** Why a route whose resource the session's login did not ask for is refused (`withinGrant`). */
const NOT_SIGNED_IN_FOR =
  "This route's resource was not part of this sign-in, so the identity provider was not asked for its token: a new sign-in grants it. The session stays; other routes still work."

/** What a flight refuses for its audience only, so that joiners for another do not take it as theirs. */
const refusedForAudience = new Set([
  'GATEHOUSE_ERR_RESOURCE_REFUSED',
  'GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED',
  'GATEHOUSE_ERR_TOKEN_EXCHANGE_WRONG_TOKEN_TYPE',
])

/**
 * Hands out a fresh access token for a session, refreshing it at most once
 * however many requests, on however many instances, find it stale at once.
 *
 * Per process, concurrent callers share one flight. Across processes, the
 * flight takes a lock in the store; whoever does not get it waits for its
 * release, re-reads the session and uses the token the holder stored. It
 * never redeems the refresh token on its own: with rotation (RFC 9700
 * §4.14.2) a second redemption would revoke the whole grant.
 */
export class UserTokens {
  readonly #store: UserTokensOptions['store']
  readonly #locks: UserTokensOptions['locks']
  readonly #oidc: UserTokensOptions['oidc']
  readonly #refreshBefore: number
  readonly #refreshWait: number
  readonly #lockTtl: number
  readonly #writes: RotatedWrites
  readonly #now: () => number
  readonly #coordination: UserTokensOptions['coordination']
  readonly #observer: UserTokensOptions['observer']
  readonly #cooldown: UserTokensOptions['cooldown']
  readonly #flight: SingleFlight<FlightResult>
  readonly #unavailable: UnavailableLimit
  readonly #refusedClient: RefusedClient
  readonly #unavailableLimit: number
  readonly #audiences: () => number
  readonly #exchangeDeps: ExchangeStepDeps
  readonly #ended: UserTokensOptions['ended']
  readonly #lateWrites: LateWrites

  constructor(options: UserTokensOptions) {
    this.#store = options.store
    this.#locks = options.locks
    this.#oidc = options.oidc
    this.#refreshBefore = options.refreshBefore
    this.#refreshWait = options.refreshWait
    this.#lockTtl = options.lockTtl
    this.#writes = new RotatedWrites(options)
    this.#now = options.now
    this.#coordination = options.coordination
    this.#observer = options.observer
    this.#cooldown = options.cooldown?.ms ? options.cooldown : undefined
    this.#flight = new SingleFlight(() => options.observer?.joined?.())
    this.#audiences = options.audiences ?? (() => 12)
    this.#ended = options.ended
    this.#lateWrites = options.lateWrites ?? new Map()
    this.#unavailableLimit = options.unavailableLimit ?? DEFAULT_UNAVAILABLE_LIMIT
    this.#unavailable = options.failing ?? new UnavailableLimit(this.#unavailableLimit, options.now)
    this.#refusedClient = options.refusedClient ?? new RefusedClient(options.now)
    this.#exchangeDeps = {
      refusals: new RefusalMemory(options.now),
      exchange: options.oidc.exchange?.bind(options.oidc),
      now: options.now,
      refreshBefore: options.refreshBefore,
      observer: options.observer,
      refreshSubject: (session) => this.#redeem(session, undefined),
      write: (session, tokens) => this.#writes.write(session, tokens),
    }
  }

  /**
   * True when the session holds no token for `audience` (the login token
   * without one), or it is due: `tokens.refreshBefore` before it expires,
   * or halfway through its life if that comes later (refresh-margin.ts),
   * or at once when it was requested with a client certificate its
   * provider no longer presents.
   */
  needsRefresh(session: SessionData, audience?: TokenAudience): boolean {
    const token = tokenFor(session.tokens, audience)
    if (token === undefined) return true
    const lifetime = token.accessTokenLifetime
    if (livesShort(this.#refreshBefore, lifetime))
      this.#observer?.shortLived?.(lifetime, this.#refreshBefore, session.idp)
    if (token.accessTokenExpiresAt - this.#now() <= refreshMargin(this.#refreshBefore, lifetime)) return true
    // A reload renewed the provider's client certificate (`tls.cert`, and
    // the routes' with it): a token bound to the old one (RFC 8705 §3)
    // would be refused by every upstream that checks the binding.
    if (token.certificate !== undefined && this.#oidc.certificateChanged?.(session, token.certificate))
      return true
    return audience?.exchange !== undefined && !exchangedFromCurrent(session.tokens, audience.exchange, token)
  }

  /**
   * The access token for `audience` (the login's own without one), minted
   * or refreshed from the session's one refresh token when due.
   */
  async accessToken(session: SessionData, audience?: TokenAudience): Promise<string> {
    const held = tokenFor(session.tokens, audience)
    if (held && !this.needsRefresh(session, audience)) return held.accessToken
    const stillValid = held !== undefined && held.accessTokenExpiresAt > this.#now()
    // An exchange spends the subject token, not the refresh token: without
    // one it goes ahead while the subject lasts (`exchangeStep` says when not).
    if (!session.tokens.refreshToken && !audience?.exchange) {
      if (stillValid) return held.accessToken
      // Without a refresh token no route's own token can be minted; the
      // login's token and the session are unaffected.
      if (audience)
        throw gatehouseError(
          'GATEHOUSE_ERR_RESOURCE_REFUSED',
          "The session has no refresh token to obtain this route's token from; the login must ask for offline_access.",
        )
      throw sessionEnded(session.id, 'The access token expired and there is no refresh token.')
    }
    try {
      const fresh = await this.#coordinated(session, audience, (s) => this.needsRefresh(s, audience))
      return tokenFor(fresh.tokens, audience)!.accessToken
    } catch (err) {
      // The IdP or store is down but the token we hold still works: use it
      // and let a later request try again.
      if (stillValid && leavesHeld(err)) return held.accessToken
      throw err
    }
  }

  /**
   * A token for `audience` other than `refused`, which an upstream has just
   * refused (RFC 6750 §3.1 `invalid_token`: revoked, or signed with a key
   * it no longer trusts), or `undefined` when the refusal must pass to the
   * browser as it came. Refreshes only if the session still holds the
   * refused token, so many requests refused for the same token make one
   * refresh, coalesced like every other.
   *
   * An upstream that refuses every token would otherwise cost one refresh
   * per request. So, per session and `route`, a token that is not due
   * anyway forces a refresh only if no other token did within the
   * cool-down: the cool-down remembers which token forced the last one,
   * so the requests refused for that same token still join its refresh.
   * The claim is made in the shared store, so the bound holds however the
   * requests are spread over instances; the refresh itself stays under the
   * one flight, lock and compare-and-set of every other.
   */
  async replaceRefused(
    session: SessionData,
    audience: TokenAudience | undefined,
    refused: string,
    route: string,
  ): Promise<string | undefined> {
    if (!session.tokens.refreshToken && !audience?.exchange) {
      throw sessionEnded(session.id, 'The upstream refused the token and there is no refresh token.')
    }
    const held = tokenFor(session.tokens, audience)
    const due = this.needsRefresh(session, audience)
    // Replaced since the request took it: no refresh to force.
    if (held !== undefined && held.accessToken !== refused && !due) return held.accessToken
    const cooldown = this.#cooldown
    if (cooldown && !due) {
      const forced = await cooldown.store.claim(
        cooldownKey(session.id, route),
        tokenFingerprint(refused),
        cooldown.ms,
      )
      if (!forced) {
        this.#observer?.cooledDown?.(route)
        return undefined
      }
    }
    const fresh = await this.#coordinated(
      session,
      audience,
      (s) => this.needsRefresh(s, audience) || tokenFor(s.tokens, audience)?.accessToken === refused,
    )
    return tokenFor(fresh.tokens, audience)!.accessToken
  }

  /**
   * Every redemption of a session's refresh token goes through one flight
   * per session in this process and one lock per session in the cluster,
   * whichever route asks: each redemption rotates the refresh token (RFC
   * 9700 §4.14.2), so two at once, for two resources, replay it. A flight
   * serves one audience; a caller for another that joined it goes round
   * again, finds its token there, or starts the next flight.
   */
  async #coordinated(
    session: SessionData,
    audience: TokenAudience | undefined,
    due: (session: SessionData) => boolean,
  ): Promise<SessionData> {
    // Before any flight or lock: nothing the IdP could answer would serve it (audience.ts).
    if (audience !== undefined && !withinGrant(session, audience))
      throw gatehouseError('GATEHOUSE_ERR_RESOURCE_REFUSED', NOT_SIGNED_IN_FOR)
    if (this.#coordination === 'none') return this.#redeem(session, audience)
    const scope = this.#scopeOf(session.id, audience)
    let seen = session.version
    const before = tokenFor(session.tokens, audience)?.accessToken
    const rounds = this.#audiences() + SPARE_ROUNDS
    for (let round = 0; round < rounds; round++) {
      const version = seen
      const run = () =>
        this.#flight.run(scope, () => this.#refreshOnce(session, version, scope, audience, due))
      // A caller that joins this process's flight waits for it; traced, the wait is a span of its own.
      const { session: after, refused } =
        tracing() && this.#flight.has(scope) ? await waited('flight', run) : await run()
      if (refused !== undefined && refused.key === (audience?.key ?? '')) throw refused.error
      if (!due(after)) return after
      // A token for this audience that came while this request waited is
      // used though due: it is as fresh as the IdP makes them (it lives
      // less than the refresh margin, or its answer took half its life),
      // and another redemption would bring one no fresher, spending the
      // refresh token again: one request once cost sixteen that way.
      const token = tokenFor(after.tokens, audience)
      if (token !== undefined && token.accessToken !== before) {
        if (token.accessTokenExpiresAt > this.#now()) return after
        throw this.#deadOnArrival(session.id, audience)
      }
      seen = after.version
    }
    throw gatehouseError('GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT')
  }

  /**
   * The 503 for a token the IdP issued with no life left (`expires_in` 0
   * or 1), waited out as an outage's is (`UnavailableLimit`): each request
   * asked the IdP again, 18 for 200 requests at once and one for each
   * after, a refresh redeeming the refresh token every time. A refresh's
   * holds back the session's refreshes for the Retry-After; it never ends
   * the session by `tokens.unavailableLimit`, since the refresh that issued
   * the token succeeded and cleared the count. An exchange's holds back
   * that audience's exchanges only.
   */
  #deadOnArrival(sessionId: string, audience: TokenAudience | undefined): GatehouseError {
    const exchange = audience?.exchange !== undefined
    const err = gatehouseError(
      exchange ? 'GATEHOUSE_ERR_TOKEN_EXCHANGE_UNAVAILABLE' : 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
      expiredOnArrival('access token'),
    )
    if (exchange) this.#unavailable.exchangeFailed(sessionId, audience.key, err, this.#unavailableLimit)
    else this.#unavailable.failed(sessionId, err, this.#unavailableLimit)
    return err
  }

  /**
   * `ref` carries the key of the request that started the flight. Every
   * request of a session carries the same key, whichever instance it
   * reaches, so a waiter re-reads with its own request's key too.
   */
  async #refreshOnce(
    ref: SessionRef,
    seen: number,
    scope: string,
    audience: TokenAudience | undefined,
    due: (session: SessionData) => boolean,
  ): Promise<FlightResult> {
    // This process awaits the answer to the session's refresh that timed
    // out, or is storing it: the IdP is being asked already, so the answer
    // is given at once, as in the session's back-off, not after a wait on
    // the lock. Asked before the lock, not only when it is taken: a store
    // outage longer than the lock's life lets it lapse while the answer's
    // write is retried, and taking it again here would redeem the spent
    // refresh token. Another instance waits for it as for any refresh in flight.
    // So are tokens the store refused (`#storeLater`): their refresh token
    // is the live one, and the session's record still holds the spent one.
    const pending = this.#lateWrites.get(scope)
    if (pending !== undefined)
      throw (
        this.#unavailable.backingOff(ref.id, audience?.exchange ? audience.key : undefined) ??
        (pending.awaiting === 'answer'
          ? gatehouseError('GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE', LATE_ANSWER_AWAITED)
          : gatehouseError('GATEHOUSE_ERR_STORE_UNAVAILABLE', ROTATED_UNSTORED))
      )
    const key = `refresh:${scope}`
    const lock = await this.#locks.tryAcquire(key, this.#lockTtl)
    if (!lock) {
      this.#observer?.joined?.()
      const how = await waited('lock', () => this.#locks.waitForRelease(key, this.#refreshWait))
      const after = await this.#store.get(ref, this.#now(), FRESH)
      if (!after) throw goneMeanwhile(ref.id)
      // Something was stored since the caller read the session: our token,
      // or another audience's, in which case the caller goes round again.
      // So it does after a holder that asked the IdP nothing: one whose own
      // token another instance had refreshed, while ours, of another
      // audience, is still due; the lock is one per session, whichever
      // audience its holder was for. And after a holder that was answered:
      // the caller may have read the session after the holder's write and
      // before its release, so the version it saw is already the holder's
      // (an exchange storm answered 503 so with the IdP up). And after a
      // lock that was free by the time this caller looked, as if it had
      // come a moment later, or given back without word of how (`unheard`):
      // nothing says its holder failed.
      if (!due(after) || after.version !== seen || how !== 'released') return { session: after }
      // The holder failed; its error is not ours to repeat, and redeeming
      // the refresh token ourselves could replay it.
      throw gatehouseError('GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE')
    }
    let how: 'idle' | 'answered' | 'released' = 'released'
    try {
      // Re-read under the lock: another instance may have refreshed between
      // our read and our acquire, and its refresh token is the live one.
      const current = await this.#store.get(ref, this.#now(), FRESH)
      if (!current) throw goneMeanwhile(ref.id)
      if (!due(current)) {
        how = 'idle'
        return { session: current }
      }
      try {
        const session = await this.#redeem(current, audience)
        how = 'answered'
        return { session }
      } catch (err) {
        // Refused for this audience only: joiners waiting for another one
        // must not take the refusal as theirs.
        if (isGatehouseError(err) && refusedForAudience.has(err.code)) {
          how = 'answered'
          return { session: current, refused: { key: audience?.key ?? '', error: err } }
        }
        throw err
      }
    } finally {
      // A refresh whose answer is still on its way keeps the lock until the
      // answer is stored: a redemption before then would present the spent
      // refresh token. Waiters meanwhile wait as for any slow refresh.
      const late = this.#lateWrites.get(scope)?.stored
      if (late === undefined) await lock.release(how)
      else void late.finally(() => lock.release().catch(() => {}))
    }
  }

  /**
   * Every IdP call for a session starts here. While the `Retry-After` its
   * last failure answered runs, the request gets that answer again and the
   * IdP is not asked (`UnavailableLimit`), nor while the session's provider
   * refuses the gateway's own credentials for the grant (`RefusedClient`);
   * a still-valid token is still used (`accessToken`).
   */
  #redeem(current: SessionData, audience: TokenAudience | undefined): Promise<SessionData> {
    const grant = audience?.exchange ? 'token_exchange' : 'refresh_token'
    const kept =
      this.#unavailable.backingOff(current.id, audience?.exchange ? audience.key : undefined) ??
      this.#refusedClient.notAsked(current.idp, grant)
    if (kept !== undefined) return Promise.reject(kept)
    if (audience?.exchange)
      return inSpan(
        'gatehouse.token.exchange',
        { [ATTR.resource]: audience.label, [ATTR.idp]: current.idp },
        async (span) => {
          try {
            const session = await exchangeStep(this.#exchangeDeps, current, audience)
            span?.setAttribute(ATTR.exchangeOutcome, 'success')
            return session
          } catch (err) {
            // Ended as a refresh at a removed provider ends it (`#redeemTraced`):
            // the record goes too, not only the browser's cookie.
            if (providerGone(err)) {
              await this.#end(current)
              throw err
            }
            span?.setAttribute(ATTR.exchangeOutcome, exchangeOutcome(err))
            if (isGatehouseError(err) && idpFailureOf(err)?.verdict === 'unavailable')
              this.#unavailable.exchangeFailed(current.id, audience.key, err, this.#unavailableLimit)
            this.#refusedClient.failed(current.idp, err)
            throw err
          }
        },
      )
    return inSpan(
      'gatehouse.token.refresh',
      { [ATTR.resource]: audience?.label ?? '', [ATTR.idp]: current.idp },
      (span) => this.#redeemTraced(current, audience, span),
    )
  }

  async #redeemTraced(
    current: SessionData,
    audience: TokenAudience | undefined,
    span: Span | undefined,
  ): Promise<SessionData> {
    const started = this.#now()
    const label = audience?.label ?? ''
    let next: TokenSet
    try {
      next = await this.#oidc.refresh(current.tokens, audience, current.dpopKey, current)
    } catch (err) {
      const late = lateAnswerOf<TokenSet>(err)
      if (late !== undefined) this.#awaitLate(current, audience, late, started)
      let outcome = refreshOutcome(err)
      let thrown = err
      this.#refusedClient.failed(current.idp, err)
      // A proof the IdP keeps refusing is bounded the same way: the session's
      // next login makes a new key (and meets the refusal itself if it lasts).
      if (
        (outcome === 'unavailable' || outcome === 'dpop_proof_refused') &&
        this.#unavailable.failed(current.id, isGatehouseError(err) ? err : undefined, this.#unavailableLimit)
      ) {
        outcome = 'unavailable_limit'
        thrown = gatehouseError(
          'GATEHOUSE_ERR_SESSION_EXPIRED',
          'The identity provider has been unavailable for too long to refresh this session. Send the user to the login endpoint.',
          err,
        )
      }
      span?.setAttribute(ATTR.refreshOutcome, outcome)
      this.#observer?.refreshed?.(
        outcome,
        this.#now() - started,
        label,
        current.id,
        idpFailureOf(err),
        current.idp,
      )
      // The classification (src/oidc/answers.ts) said the grant is over, or the IdP was gone too long.
      if (isGatehouseError(thrown) && thrown.code === 'GATEHOUSE_ERR_SESSION_EXPIRED') {
        // Already gone: a logout or a sign-in over it revoked the grant
        // while the refresh was on its way, and may have set this browser
        // a new session's cookie, which clearing ours would clear.
        if (!(await this.#end(current))) endedElsewhere(thrown)
      } else {
        // A refused 200's rotated refresh token is the live one as much as
        // an accepted answer's (rotated.ts): one the store refuses is kept
        // as theirs are (`#storeLater`).
        const kept = keeping(current, rotatedRefreshToken(err))
        if (kept !== undefined)
          await this.#writes.write(current, kept).catch((failed: unknown) => {
            if (isGatehouseError(failed) && failed.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE')
              this.#storeLater(current, audience, kept)
          })
      }
      throw thrown
    }
    this.#unavailable.clear(current.id)
    span?.setAttribute(ATTR.refreshOutcome, 'success')
    this.#observer?.refreshed?.('success', this.#now() - started, label, current.id, undefined, current.idp)
    const tokens = merged(current.tokens, audience, next)
    try {
      return await this.#writes.write(current, tokens)
    } catch (err) {
      if (isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE')
        this.#storeLater(current, audience, tokens)
      throw err
    }
  }

  /**
   * Offers rotated tokens (an answer's, or a refused 200's refresh token)
   * the store refused for the whole of the lock's lifetime (a full Redis under `noeviction` answers every write `OOM`
   * until an operator acts; an outage can outlast the lock) to it again,
   * for `LATE_WRITE_BUDGET`, as a late answer's are: they exist nowhere
   * else, and giving them up left the session with the spent refresh
   * token, whose next redemption the IdP took as a replay and revoked the
   * grant for (RFC 9700 §4.14.2). The session's lock is held until then
   * (`#refreshOnce`), and this instance answers the session's refreshes
   * 503 at once meanwhile; the compare-and-set keeps any newer write.
   */
  #storeLater(current: SessionData, audience: TokenAudience | undefined, tokens: TokenSet): void {
    const scope = this.#scopeOf(current.id, audience)
    const stored: Promise<void> = this.#writes
      .store(current, tokens, LATE_WRITE_BUDGET)
      .then(
        () => {},
        () => {},
      )
      .finally(() => {
        if (this.#lateWrites.get(scope)?.stored === stored) this.#lateWrites.delete(scope)
      })
    this.#lateWrites.set(scope, { stored, awaiting: 'store' })
  }

  /**
   * Ends a session the IdP, or the gateway's config, says is over: its
   * record, and what this process holds of it. False when the record was
   * gone already: something else ended the session meanwhile.
   */
  async #end(session: SessionData): Promise<boolean> {
    this.#unavailable.clear(session.id)
    const removed = await this.#store.delete(session.id)
    this.#ended?.(session.id, session.dpopKey)
    return removed
  }

  /**
   * Stores the answer to a refresh that timed out when it comes
   * (late-answer.ts), as a refresh in time would have been stored; the
   * session's lock is held until then (`#refreshOnce`). An answer that is
   * a refusal stores nothing but a rotated refresh token it carried: the
   * next redemption meets the refusal itself.
   */
  #awaitLate(
    current: SessionData,
    audience: TokenAudience | undefined,
    late: Promise<LateAnswer<TokenSet>>,
    started: number,
  ): void {
    const scope = this.#scopeOf(current.id, audience)
    const stored = late
      .then(async ({ tokens, rotated }) => {
        const told = (outcome: RefreshOutcome) =>
          this.#observer?.refreshed?.(
            outcome,
            this.#now() - started,
            audience?.label ?? '',
            current.id,
            undefined,
            current.idp,
          )
        if (tokens === undefined) {
          told('late_lost')
          return this.#writes.keep(current, rotated, LATE_WRITE_BUDGET)
        }
        // A session gone since (logged out, ended) has nothing to store
        // into; a newer write (the lock lost) is kept over this one.
        const stored = await this.#writes
          .store(current, merged(current.tokens, audience, tokens), LATE_WRITE_BUDGET)
          .catch(() => 'failed' as const)
        if (stored !== 'updated') return told('late_lost')
        this.#unavailable.clear(current.id)
        told('late_success')
      })
      // The request that asked has had its answer.
      .catch(() => {})
      .finally(() => {
        if (this.#lateWrites.get(scope)?.stored === stored) this.#lateWrites.delete(scope)
      })
    this.#lateWrites.set(scope, { stored, awaiting: 'answer' })
  }

  #scopeOf(id: string, audience: TokenAudience | undefined): string {
    return refreshScope(this.#coordination, id, audience)
  }
}
