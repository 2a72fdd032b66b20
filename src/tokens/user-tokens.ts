import { gatehouseError } from '../errors.js'
import { sessionEnded } from '../session/log-id.js'
import type { SessionData, SessionStore } from '../session/types.js'
import type { DpopKey, SessionIssuer, TokenAudience } from '../types.js'
import { type AudienceRoundsDeps, audienceRounds } from './audience-rounds.js'
import type { Exchange } from './exchange-step.js'
import { exchangedFromCurrent } from './exchange-subject.js'
import { leavesHeld } from './held-token.js'
import type { LateWrites } from './late-writes.js'
import { type RefreshClient, redeem } from './redemption.js'
import { cooldownKey, tokenFingerprint } from './refresh-cooldown.js'
import { livesShort, refreshMargin } from './refresh-margin.js'
import type { RefreshObserver } from './refresh-observer.js'
import { type Coordination, refreshScope } from './refresh-scope.js'
import { RefusalMemory } from './refusal-memory.js'
import { RefusedClient } from './refused-client.js'
import { RotatedWrites } from './rotated-writes.js'
import { SingleFlight } from './single-flight.js'
import { tokenFor } from './token-set.js'
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
  readonly oidc: RefreshClient & {
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
  readonly #refreshBefore: number
  readonly #now: () => number
  readonly #oidc: UserTokensOptions['oidc']
  readonly #observer: UserTokensOptions['observer']
  readonly #cooldown: UserTokensOptions['cooldown']
  /** What the refresh path below `accessToken` shares: its flight, lock, back-offs and writes. */
  readonly #deps: AudienceRoundsDeps

  constructor(options: UserTokensOptions) {
    this.#refreshBefore = options.refreshBefore
    this.#now = options.now
    this.#oidc = options.oidc
    this.#observer = options.observer
    this.#cooldown = options.cooldown?.ms ? options.cooldown : undefined
    const coordination = options.coordination
    const unavailableLimit = options.unavailableLimit ?? DEFAULT_UNAVAILABLE_LIMIT
    const writes = new RotatedWrites(options)
    const deps: AudienceRoundsDeps = {
      store: options.store,
      locks: options.locks,
      oidc: options.oidc,
      lockTtl: options.lockTtl,
      refreshWait: options.refreshWait,
      now: options.now,
      observer: options.observer,
      coordination,
      flight: new SingleFlight(() => options.observer?.joined?.()),
      audiences: options.audiences ?? (() => 12),
      ended: options.ended,
      lateWrites: options.lateWrites ?? new Map(),
      writes,
      unavailableLimit,
      unavailable: options.failing ?? new UnavailableLimit(unavailableLimit, options.now),
      refusedClient: options.refusedClient ?? new RefusedClient(options.now),
      exchange: {
        refusals: new RefusalMemory(options.now),
        exchange: options.oidc.exchange?.bind(options.oidc),
        now: options.now,
        refreshBefore: options.refreshBefore,
        observer: options.observer,
        refreshSubject: (session) => redeem(deps, session, undefined),
        write: (session, tokens) => writes.write(session, tokens),
      },
      scopeOf: (id, audience) => refreshScope(coordination, id, audience),
    }
    this.#deps = deps
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
      const fresh = await audienceRounds(this.#deps, session, audience, (s) => this.needsRefresh(s, audience))
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
    const fresh = await audienceRounds(
      this.#deps,
      session,
      audience,
      (s) => this.needsRefresh(s, audience) || tokenFor(s.tokens, audience)?.accessToken === refused,
    )
    return tokenFor(fresh.tokens, audience)!.accessToken
  }
}
