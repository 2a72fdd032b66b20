import {
  type ErrorCode,
  type GatehouseError,
  gatehouseError,
  isGatehouseError,
  RefreshWaitTimeoutError,
  retryAfterFor,
  retryAfterOf,
} from '../errors.js'
import { expiredOnArrival } from '../oidc/token-lifetime.js'
import { idpFailureOf } from '../oidc/translate.js'
import { ATTR, inSpan, tracing, waited } from '../tracing/spans.js'
import type { CachedToken, ClientRegistration } from '../types.js'
import { boundKey } from './audience.js'
import { leavesHeld } from './held-token.js'
import { clientCooldownKey, tokenFingerprint } from './refresh-cooldown.js'
import { livesShort, refreshMargin } from './refresh-margin.js'
import { RefusalMemory } from './refusal-memory.js'
import { RefusedClient } from './refused-client.js'
import { RefusedTokens } from './refused-tokens.js'
import { SingleFlight } from './single-flight.js'
import type { LockService, RefreshCooldowns, TokenCache } from './types.js'
import { notAsked } from './unavailable-limit.js'

export interface ClientTokensOptions {
  /**
   * The copy shared with the other instances; with one process, the
   * process's own (`MemoryTokenCache`), which the `ClientTokens` a reload
   * builds share with those it replaces: their lock is the process's, and
   * a waiter on it must find the token its holder fetched. Absent: this
   * local copy is the only one.
   */
  readonly cache?: TokenCache | undefined
  readonly locks: LockService
  /** Fetches tokens: from provider `idp` (`IdentityProviders`), or one client that ignores it. */
  readonly oidc: {
    clientCredentials(scopes: readonly string[], dpop?: boolean, idp?: string): Promise<CachedToken>
    /**
     * The issuer and client id provider `idp` fetches them as, which a
     * cached token belongs to; absent, one client whose tokens are all its own.
     */
    clientRegistration?(idp?: string): ClientRegistration
    /**
     * The SHA-256 fingerprint of the client certificate provider `idp`
     * presents (`tls.cert`), to which its tokens may be bound (RFC 8705
     * §3); `undefined` without one.
     */
    clientCertificate?(idp?: string): string | undefined
  }
  readonly refreshBefore: number
  readonly refreshWait: number
  readonly lockTtl: number
  readonly now: () => number
  /**
   * Bounds the replacements forced by upstreams that refuse tokens
   * (`replaceRefused`): per token, one refused token per `ms` may force
   * one (`tokens.retryCooldown`). Absent: every refused token may.
   */
  readonly cooldown?: { readonly store: RefreshCooldowns; readonly ms: number } | undefined
  /** The providers refusing the gateway's own credentials, shared with the user tokens; one of its own when absent. */
  readonly refusedClient?: RefusedClient | undefined
  /** `idp`: the provider the token is from, `undefined` for the first. */
  readonly observer?: {
    hit?(idp?: string): void
    miss?(idp?: string): void
    /** Tokens from `idp` live `lifetime` ms, less than twice `refreshBefore`: they are renewed halfway through their life. */
    shortLived?(lifetime: number, refreshBefore: number, idp?: string): void
    /**
     * The IdP could not serve the renewal of a token from `idp` (`failed`,
     * its `unavailable` verdict), and the token, due but still valid, is
     * used until it expires.
     */
    heldOver?(failed: GatehouseError, idp?: string): void
    /** A refused token did not force a replacement on `route`: another did within the cool-down. */
    cooledDown?(route: string): void
  }
}

/**
 * Client-credentials tokens, one per set of scopes, fetched once per
 * lifetime for the whole cluster: a local copy serves the hot path, the
 * shared cache serves the other instances, and a lock in the store keeps
 * N instances from fetching N tokens.
 */
export class ClientTokens {
  readonly #cache: ClientTokensOptions['cache']
  readonly #locks: ClientTokensOptions['locks']
  readonly #oidc: ClientTokensOptions['oidc']
  readonly #refreshBefore: number
  readonly #refreshWait: number
  readonly #lockTtl: number
  readonly #now: () => number
  readonly #observer: ClientTokensOptions['observer']
  readonly #local = new Map<string, CachedToken>()
  readonly #flight = new SingleFlight<CachedToken>()
  /** Replacements of refused tokens, apart from `#flight`: a fetch in flight may bring back the refused token. */
  readonly #replacing = new SingleFlight<CachedToken>()
  readonly #cooldown: ClientTokensOptions['cooldown']
  /**
   * Per token, what a fetch the IdP could not serve answered, until its
   * `Retry-After` is over. Keyed as `#local` is, by configured scopes.
   */
  readonly #backOff = new Map<string, { readonly answered: ErrorCode; readonly until: number }>()
  /** The providers refusing the gateway's own credentials: per provider, not per token. */
  readonly #refusedClient: RefusedClient
  /** Per token, the IdP's refusal of its scopes, for REFUSAL_MEMORY. */
  readonly #refusals: RefusalMemory
  /** Per token, the access tokens upstreams refused: none is kept as the local copy again (`#keep`). */
  readonly #refused: RefusedTokens

  constructor(options: ClientTokensOptions) {
    this.#cache = options.cache
    this.#locks = options.locks
    this.#oidc = options.oidc
    this.#refreshBefore = options.refreshBefore
    this.#refreshWait = options.refreshWait
    this.#lockTtl = options.lockTtl
    this.#now = options.now
    this.#observer = options.observer
    this.#cooldown = options.cooldown
    this.#refusedClient = options.refusedClient ?? new RefusedClient(options.now)
    this.#refusals = new RefusalMemory(options.now)
    this.#refused = new RefusedTokens(options.now)
  }

  async accessToken(scopes: readonly string[]): Promise<string> {
    return (await this.token(scopes)).accessToken
  }

  /**
   * The token for `scopes`; with `dpop`, one bound to a key of the
   * gateway's, which comes with it (`CachedToken.dpopKey`). Bound and
   * bearer tokens for the same scopes are two tokens.
   */
  async token(scopes: readonly string[], dpop = false, idp?: string): Promise<CachedToken> {
    const key = this.#keyOf(scopes, dpop, idp)
    const local = this.#local.get(key)
    if (local && this.#fresh(local)) {
      this.#observer?.hit?.(idp)
      return local
    }
    const run = () => this.#flight.run(key, () => this.#fetchOnce(key, scopes, dpop, idp))
    // A request that joins another's fetch shows the wait, as a user refresh's joiners do.
    const token = tracing() && this.#flight.has(key) ? await waited('flight', run) : await run()
    this.#keep(key, token)
    return token
  }

  /**
   * A token in place of `refused`, which the upstream of `route` refused
   * before it expired (401 `invalid_token`, RFC 6750 §3.1: revoked, or its
   * signing keys rotated), or `undefined` when the refusal is to pass to
   * the browser: another token forced a replacement of this one within
   * the cool-down. The refused token is dropped from the shared cache only
   * while the cache still holds it, and the new one is fetched under the
   * token's lock, so however many requests on however many instances were
   * refused for it, the IdP issues one. Without that, a revoked token
   * stayed in use until it expired, on every instance.
   */
  async replaceRefused(
    scopes: readonly string[],
    dpop: boolean,
    idp: string | undefined,
    refused: string,
    route: string,
  ): Promise<CachedToken | undefined> {
    const key = this.#keyOf(scopes, dpop, idp)
    const held = this.#local.get(key)
    // Replaced since the request took it: no fetch to force.
    if (held !== undefined && held.accessToken !== refused && this.#fresh(held)) return held
    const cooldown = this.#cooldown
    if (cooldown) {
      const forced = await cooldown.store.claim(
        clientCooldownKey(key),
        tokenFingerprint(refused),
        cooldown.ms,
      )
      if (!forced) {
        this.#observer?.cooledDown?.(route)
        return undefined
      }
    }
    const token = await this.#replacing.run(key, () => this.#replace(key, scopes, dpop, idp, refused))
    this.#keep(key, token)
    return token
  }

  async #replace(
    key: string,
    scopes: readonly string[],
    dpop: boolean,
    idp: string | undefined,
    refused: string,
  ): Promise<CachedToken> {
    const held = this.#local.get(key)
    // Noted before the shared copy is dropped: a read of it that the drop
    // has not yet reached, or a flight that read it before, must not put
    // it back (`#keep`). Its expiry is known when it is the local copy;
    // else it is kept until the bound forgets it.
    this.#refused.refused(
      key,
      refused,
      held?.accessToken === refused ? held.expiresAt : Number.POSITIVE_INFINITY,
    )
    // Not kept to fall back on either (`#fetchOnce`): the upstream refuses it.
    if (held?.accessToken === refused) this.#local.delete(key)
    await this.#cache?.drop(key, refused)
    return this.#renew(key, scopes, dpop, idp)
  }

  #keyOf(scopes: readonly string[], dpop: boolean, idp: string | undefined): string {
    return boundKey(
      cacheKey(scopes, idp, this.#oidc.clientRegistration?.(idp), this.#oidc.clientCertificate?.(idp)),
      dpop,
    )
  }

  #fresh(token: CachedToken): boolean {
    return token.expiresAt - this.#now() > refreshMargin(this.#refreshBefore, token.lifetime)
  }

  /**
   * The shared copy when it is fresh. One that is due is kept as the local
   * copy if it outlives that: it is what a failed renewal falls back on.
   */
  async #shared(key: string): Promise<CachedToken | undefined> {
    const shared = await this.#cache?.get(key)
    // Refused, and read before the refusal's drop reached the shared copy,
    // or written back by an instance that has not heard of the refusal: absent.
    if (shared === undefined || this.#refused.has(key, shared.accessToken)) return undefined
    const local = this.#local.get(key)
    if (local === undefined || shared.expiresAt > local.expiresAt) this.#local.set(key, shared)
    return this.#fresh(shared) ? shared : undefined
  }

  /**
   * Makes `token` the local copy, unless an upstream refused it: a flight
   * that read it before the refusal lands after, and the refused token,
   * fresh in the local copy, was sent again by every request until it
   * expired or forced one more replacement.
   */
  #keep(key: string, token: CachedToken): void {
    if (!this.#refused.has(key, token.accessToken)) this.#local.set(key, token)
  }

  /**
   * A fresh token, or, when its renewal fails in a way that says nothing
   * against the token held (`leavesHeld`: the IdP or the store unavailable,
   * the IdP refusing the gateway's credentials), the held one while it
   * lasts, as a session's refresh does (`UserTokens.accessToken`). Every
   * joiner of the flight, and a waiter on another instance's lock whose
   * holder failed, gets it too: the renewal starts `refreshBefore` ahead,
   * and an IdP blip within that window must not take every client route
   * down while the token still works. The failure's back-off
   * (`#failed`) keeps the IdP from being asked again meanwhile.
   */
  async #fetchOnce(
    key: string,
    scopes: readonly string[],
    dpop: boolean,
    idp: string | undefined,
  ): Promise<CachedToken> {
    try {
      return await this.#renew(key, scopes, dpop, idp)
    } catch (err) {
      // Judged after the failure: a hanging IdP may have outlasted the token.
      // Never one an upstream refused: `#keep` keeps it out of the local copy.
      const held = this.#local.get(key)
      if (held === undefined || held.expiresAt <= this.#now() || !leavesHeld(err)) throw err
      if (isGatehouseError(err) && idpFailureOf(err)?.verdict === 'unavailable')
        this.#observer?.heldOver?.(err, idp)
      return held
    }
  }

  async #renew(
    key: string,
    scopes: readonly string[],
    dpop: boolean,
    idp: string | undefined,
    again = false,
  ): Promise<CachedToken> {
    const cached = await this.#shared(key)
    if (cached) {
      this.#observer?.hit?.(idp)
      return cached
    }
    this.#observer?.miss?.(idp)
    // The IdP failed the last fetch and told the client when to come back:
    // every client route's request asking again would meet a recovering IdP
    // at once. Per process, as a session's refreshes (UnavailableLimit); a
    // token another instance fetched meanwhile is taken from the cache above.
    const backOff = this.#backOff.get(key)
    if (backOff !== undefined) {
      const left = backOff.until - this.#now()
      if (left > 0) throw notAsked(backOff.answered, left)
      this.#backOff.delete(key)
    }
    const refused = this.#refusals.kept(key) ?? this.#refusedClient.notAsked(idp, 'client_credentials')
    if (refused !== undefined) throw refused
    const lockKey = `client:${key}`
    const lock = await this.#locks.tryAcquire(lockKey, this.#lockTtl)
    if (!lock) {
      const how = await waited('lock', () =>
        this.#locks.waitForRelease(lockKey, this.#refreshWait).catch((err: unknown) => {
          // The lock is shared with user refreshes, but a client route has no
          // refresh token: tell its caller about the token it was waiting for.
          if (err instanceof RefreshWaitTimeoutError)
            throw gatehouseError('GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE', undefined, err)
          throw err
        }),
      )
      const after = await this.#shared(key)
      if (after) return after
      // No word of how the lock was given back (a lapse, a message late or
      // lost: types.ts), or it was free by the time this waiter looked:
      // nothing says a holder failed, so this looks once more, as a first
      // comer would, where a release that says so is answered 503.
      if (!again && (how === 'unheard' || how === 'free')) return this.#renew(key, scopes, dpop, idp, true)
      throw gatehouseError('GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE')
    }
    try {
      const again = await this.#shared(key)
      if (again) return again
      const token = await inSpan(
        'gatehouse.token.client',
        { [ATTR.resource]: `scope:${[...scopes].sort().join(' ')}` },
        () => this.#oidc.clientCredentials(scopes, dpop, idp),
      ).catch((err: unknown) => {
        this.#failed(key, idp, err)
        throw err
      })
      if (token.expiresAt <= this.#now()) throw this.#deadOnArrival(key)
      if (livesShort(this.#refreshBefore, token.lifetime))
        this.#observer?.shortLived?.(token.lifetime, this.#refreshBefore, idp)
      const ttl = token.expiresAt - this.#now()
      // Issued is usable, shared or not: a store gone meanwhile must not
      // throw the token away, nor, with it, every request until the store
      // is back. The other instances fetch their own, as without a cache.
      if (ttl > 0) await this.#cache?.set(key, token, ttl).catch(() => {})
      return token
    } finally {
      // Not given back, the lock lapses with its TTL; the token stands.
      await lock.release().catch(() => {})
    }
  }

  /**
   * The 503 for a token the IdP issued with no life left (`expires_in` 0,
   * or under the second the gateway counts short), waited out as an
   * outage's is: it was forwarded dead, and each request asked the IdP
   * again, as a session's did (`deadOnArrival`, audience-rounds.ts).
   */
  #deadOnArrival(key: string): GatehouseError {
    const code = 'GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE'
    this.#backOff.set(key, { answered: code, until: this.#now() + retryAfterOf(code)! * 1_000 })
    return gatehouseError(code, expiredOnArrival('client-credentials token'))
  }

  /**
   * A fetch the IdP could not serve (the `unavailable` verdict) is not
   * tried again before its `Retry-After`: the IdP's own, bounded
   * (`translate.ts`), or the catalogue's. One the IdP refused the gateway's
   * credentials for is not tried again at that provider, for any token,
   * before CLIENT_REFUSED_BACK_OFF; one it refused the scopes for
   * (`route_refused`), not for this token before REFUSAL_MEMORY.
   */
  #failed(key: string, idp: string | undefined, err: unknown): void {
    this.#refusedClient.failed(idp, err)
    if (!isGatehouseError(err)) return
    const verdict = idpFailureOf(err)?.verdict
    if (verdict === 'route_refused') this.#refusals.refused(key, err)
    if (verdict !== 'unavailable') return
    const retryAfter = retryAfterFor(err)
    if (retryAfter !== undefined)
      this.#backOff.set(key, { answered: err.code, until: this.#now() + retryAfter * 1_000 })
  }
}

/**
 * The scopes, sorted; a provider's other than the first (`idp`) is named
 * first, in quotes, which no scope token has (RFC 6749 §3.3), so two
 * providers' tokens for the same scopes are two tokens. Before both, the
 * issuer and the client id (quoted: it may hold a space) that mint them: the
 * shared copy outlives a reload, and one that gives the provider another
 * (or makes another provider the first) must not be served the token the
 * previous one minted, nor the DPoP key bound to it. After them, quoted,
 * the fingerprint of the client certificate they are fetched with: an IdP
 * binds them to it (RFC 8705 §3), and an upstream takes one only with that
 * certificate, so one a reload renews (`tls.cert`, and the routes' with it)
 * must not be served a token bound to the old one, refused upstream until
 * it expired.
 */
function cacheKey(
  scopes: readonly string[],
  idp: string | undefined,
  registration: ClientRegistration | undefined,
  certificate: string | undefined,
): string {
  const key = [...scopes].sort().join(' ') || '-'
  const named = idp === undefined ? key : `"${idp}" ${key}`
  const bound = certificate === undefined ? named : `${named} "x5t#S256 ${certificate}"`
  return registration === undefined
    ? bound
    : `${registration.issuer} ${JSON.stringify(registration.clientId)} ${bound}`
}
