import type { GatehouseConfig } from '../config/types.js'
import type { HeldKeys } from '../dpop/held-keys.js'
import type { IdentityProviders } from '../oidc/providers.js'
import { ClientTokens, type ClientTokensOptions } from '../tokens/client-tokens.js'
import type { LateWrites } from '../tokens/late-writes.js'
import type { RefreshObserver } from '../tokens/refresh-observer.js'
import type { Coordination } from '../tokens/refresh-scope.js'
import { RefusedClient } from '../tokens/refused-client.js'
import type { TokenCache } from '../tokens/types.js'
import type { UnavailableLimit } from '../tokens/unavailable-limit.js'
import { UserTokens, type UserTokensOptions } from '../tokens/user-tokens.js'
import { FrontendUserTokens } from './frontend-user-tokens.js'
import type { Stores } from './stores.js'

export interface TokenServicesOptions {
  /** Clock for token expiry and session timeouts, epoch ms. */
  readonly now: () => number
  /** Initial lifetime of the refresh lock, ms; default: the IdP timeout plus 5 s. */
  readonly lockTtl?: number | undefined
  /** See `UserTokensOptions.coordination`: tests only. */
  readonly coordination?: Coordination | undefined
}

/** What the token services report to (server/observability.ts). */
export interface TokenObservers {
  readonly refresh: RefreshObserver
  readonly clientTokens: NonNullable<ClientTokensOptions['observer']>
}

/** What the token services of every config share, made once per process (lasting.ts). */
export interface TokenServicesShared {
  /** Sessions whose IdP calls are failing: a reload that replaces the token parts keeps their back-off and count. */
  readonly failing: UnavailableLimit
  /** Sessions whose refresh's late answer is awaited: a reload's token parts must wait for it too. */
  readonly lateWrites: LateWrites
  /** Every cache of DPoP keys, which a session's end empties of its key. */
  readonly keys: HeldKeys
  /** The client-credentials tokens every config's services share. */
  readonly clientTokenCopy: TokenCache
}

export interface TokenServices {
  readonly userTokens: UserTokens
  /** The frontends' own user tokens, by the providers they sign in with. */
  readonly frontendTokens: FrontendUserTokens
  readonly clientTokens: ClientTokens
}

/**
 * The user and client-credentials token services of one config's
 * providers: `audiences`, the most audiences a request may wait through a
 * flight for each of.
 */
export function tokenServices(
  config: GatehouseConfig,
  providers: IdentityProviders,
  stores: Stores,
  observers: TokenObservers,
  options: TokenServicesOptions,
  shared: TokenServicesShared,
  audiences: () => number,
): TokenServices {
  const { now } = options
  const { failing, lateWrites, keys, clientTokenCopy } = shared
  // Both token kinds fetch once per lifetime under the same lock discipline.
  // The locks are the stores', which outlive these parts: a refresh that a
  // previous config's single-flight still holds is waited for, never run twice.
  const fetchOnce = {
    locks: stores.locks,
    oidc: providers,
    // One provider's refusal of the gateway's credentials holds back both
    // token kinds; new parts, as a reload that changes the credentials
    // makes, ask again at once.
    refusedClient: new RefusedClient(now, providers.default.name),
    refreshBefore: config.tokens.refreshBefore,
    refreshWait: config.tokens.refreshWait,
    // The slowest provider's budget: a lock outlives any holder's call,
    // a refresh's included, whose answer is awaited past its timeout.
    lockTtl:
      options.lockTtl ??
      Math.max(...config.identityProviders.map((p) => p.timeout + p.lateAnswerWait)) + 5_000,
    now,
  }
  const userTokensOptions: UserTokensOptions = {
    ...fetchOnce,
    store: stores.sessions,
    unavailableLimit: config.tokens.unavailableLimit,
    failing,
    lateWrites,
    coordination: options.coordination ?? 'single-flight',
    cooldown: { store: stores.cooldowns, ms: config.tokens.retryCooldown },
    observer: observers.refresh,
    audiences,
    ended: (id, key) => keys.ended(id, key),
  }
  const userTokens = new UserTokens(userTokensOptions)
  // The same store, locks, back-offs and refusals as `userTokens`; a
  // flight of their own, as a session is only ever its frontend's.
  const frontendTokens = new FrontendUserTokens(
    (names) => new UserTokens({ ...userTokensOptions, oidc: providers.only(names) }),
  )
  const clientTokens = new ClientTokens({
    ...fetchOnce,
    cache: clientTokenCopy,
    cooldown: { store: stores.cooldowns, ms: config.tokens.retryCooldown },
    observer: observers.clientTokens,
  })
  return { userTokens, frontendTokens, clientTokens }
}
