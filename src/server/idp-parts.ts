import { isDeepStrictEqual } from 'node:util'
import type { FastifyBaseLogger } from 'fastify'
import type { GatehouseConfig, IdentityProviderConfig } from '../config/types.js'
import type { HeldKeys } from '../dpop/held-keys.js'
import { configuredResources, type OidcClient, type OidcObserver } from '../oidc/client.js'
import { type IdentityProviders, ProviderNamesHad, registrations } from '../oidc/providers.js'
import type { ClientTokens } from '../tokens/client-tokens.js'
import type { LateWrites } from '../tokens/late-writes.js'
import { MemoryTokenCache } from '../tokens/memory-token-cache.js'
import type { TokenCache } from '../tokens/types.js'
import { DEFAULT_UNAVAILABLE_LIMIT, UnavailableLimit } from '../tokens/unavailable-limit.js'
import type { UserTokens } from '../tokens/user-tokens.js'
import type { ClientRegistration } from '../types.js'
import type { FrontendUserTokens } from './frontend-user-tokens.js'
import { ProviderClientPool, type ProviderClients } from './provider-clients.js'
import type { Stores } from './stores.js'
import {
  type TokenObservers,
  type TokenServicesOptions,
  type TokenServicesShared,
  tokenServices,
} from './token-services.js'

/** What the IdP parts report to (server/observability.ts). */
export interface IdpObservers extends TokenObservers {
  /** The observer of one provider's client. */
  readonly idp: (provider: IdentityProviderConfig) => OidcObserver
}

/**
 * The identity providers' clients and the token services that call them, with the settings
 * they were built from, reporting to the observers of the app that made
 * them (whose logger and metrics every later app shares). Their single-flights, locks and client-token copy
 * are kept across reloads while those settings do not change.
 */
export class IdpParts {
  /** The first provider's client. */
  readonly oidc: OidcClient
  /** Every provider's client, by name: a session's calls go to its own. */
  readonly providers: IdentityProviders
  readonly userTokens: UserTokens
  readonly clientTokens: ClientTokens
  /** The settings these parts read; a config with equal ones may share them. */
  readonly basis: unknown
  readonly clients: ProviderClients
  /** Apps using these parts; the last to let go closes them. */
  holders = 0
  /**
   * At most one audience per route, and the login token's: of the largest
   * config using these parts, since a reload that adds routes keeps them.
   */
  #audiences: number
  /**
   * The frontends' own user tokens, by the providers they sign in with,
   * while an app holds them (`holdUserTokens`).
   */
  readonly frontendTokens: FrontendUserTokens

  constructor(
    config: GatehouseConfig,
    clients: ProviderClients,
    stores: Stores,
    observers: IdpObservers,
    options: TokenServicesOptions,
    shared: TokenServicesShared,
  ) {
    this.#audiences = config.routes.length + 1
    this.basis = idpBasis(config)
    this.clients = clients
    this.providers = clients.providers
    this.oidc = this.providers.default
    const tokens = tokenServices(
      config,
      this.providers,
      stores,
      observers,
      options,
      shared,
      () => this.#audiences,
    )
    this.userTokens = tokens.userTokens
    this.frontendTokens = tokens.frontendTokens
    this.clientTokens = tokens.clientTokens
  }

  /**
   * The user tokens one app's frontends take, until it closes
   * (`FrontendUserTokensHold.release`): of a frontend that signs in with
   * the providers `names` (`frontends[].identityProviders`; `undefined`:
   * every provider, `userTokens`). A session of a provider that is not one
   * of them, which a reload took off the frontend's list, is judged as a
   * removed provider's session (`IdentityProviders.of`): nothing of it is
   * refreshed or exchanged, and it ends when its token is due.
   */
  holdUserTokens(): {
    of(names: readonly string[] | undefined): UserTokens
    release(): void
  } {
    const held = this.frontendTokens.hold()
    return {
      of: (names) => (names === undefined ? this.userTokens : held.of(names)),
      release: () => held.release(),
    }
  }

  /** Takes on one more config's routes: a request may wait through a flight for each. */
  serve(config: GatehouseConfig): void {
    this.#audiences = Math.max(this.#audiences, config.routes.length + 1)
  }

  discover(log: FastifyBaseLogger): void {
    this.clients.discover(log)
  }

  whenDiscovered(only?: readonly OidcClient[]): Promise<void> {
    return this.clients.whenDiscovered(only)
  }
}

/**
 * The IdP parts the apps of the process hold, shared by the apps whose
 * configs have the same settings for them (a reload that changes none
 * keeps them), with what every parts' token services share: the back-off
 * of failing sessions, the late answers awaited and the client-token copy.
 */
export class IdpPartsInUse {
  readonly #stores: Stores
  readonly #options: TokenServicesOptions
  readonly #keys: HeldKeys
  /** IdP parts some app holds, by the settings they were built from. */
  readonly #idp = new Set<IdpParts>()
  /** The provider clients those parts use, by the settings they were built from. */
  readonly #clients = new Set<ProviderClients>()
  /** Each provider's client those hold, shared by them while its settings are the same. */
  readonly #pool: ProviderClientPool
  /** Sessions whose IdP calls are failing: a reload that replaces the token parts keeps their back-off and count. */
  readonly #failing: UnavailableLimit
  /** Sessions whose refresh's late answer is awaited: a reload's token parts must wait for it too. */
  readonly #lateWrites: LateWrites = new Map()
  /**
   * The client-credentials tokens every `IdpParts` shares: the store's, or
   * in memory mode the process's own, so that the parts a reload builds
   * take the token the replaced ones fetched, and a request that waited on
   * that fetch's lock finds it (src/tokens/memory-token-cache.ts).
   */
  readonly #clientTokens: TokenCache
  /**
   * Each provider's issuer and client id in the first config: what a
   * session sealed before sessions recorded theirs is taken to have.
   */
  #startedWith: ReadonlyMap<string, ClientRegistration> | undefined
  /** Every provider name of every config the process has had: whose sessions a logout still reads. */
  readonly #namesHad = new ProviderNamesHad()

  /** `keys`: every cache of DPoP keys, which a session's end empties of its key. */
  constructor(stores: Stores, options: TokenServicesOptions, keys: HeldKeys) {
    this.#stores = stores
    this.#options = options
    this.#keys = keys
    this.#pool = new ProviderClientPool(options.now, keys)
    this.#failing = new UnavailableLimit(DEFAULT_UNAVAILABLE_LIMIT, options.now)
    this.#clientTokens = stores.clientTokens ?? new MemoryTokenCache(options.now)
  }

  /**
   * The IdP parts for `config`, held until `release`: those an app holds
   * already when the settings they read are the same, else new ones, not
   * yet discovered.
   */
  hold(config: GatehouseConfig, observers: IdpObservers): IdpParts {
    const basis = idpBasis(config)
    let parts = [...this.#idp].find((held) => isDeepStrictEqual(held.basis, basis))
    if (parts === undefined) {
      const wanted = clientBasis(config)
      let clients = [...this.#clients].find((held) => isDeepStrictEqual(held.basis, wanted))
      if (clients === undefined) {
        clients = this.#pool.clientsOf(config, observers.idp, wanted, this.#startedWith, this.#namesHad)
        this.#startedWith ??= registrations(clients.providers.all)
        this.#clients.add(clients)
      }
      clients.holders++
      parts = new IdpParts(config, clients, this.#stores, observers, this.#options, {
        failing: this.#failing,
        lateWrites: this.#lateWrites,
        keys: this.#keys,
        clientTokenCopy: this.#clientTokens,
      })
      this.#idp.add(parts)
    }
    parts.holders++
    parts.serve(config)
    return parts
  }

  /** How many lists of providers the frontends of the parts held have user tokens for: tests. */
  get frontendTokenLists(): number {
    let lists = 0
    for (const parts of this.#idp) lists += parts.frontendTokens.size
    return lists
  }

  /** Lets go of parts from `hold`; the last holder of a client closes it. */
  async release(parts: IdpParts): Promise<void> {
    if (--parts.holders > 0) return
    this.#idp.delete(parts)
    const { clients } = parts
    if (--clients.holders > 0) return
    this.#clients.delete(clients)
    await this.#pool.release(clients)
  }
}

/**
 * Everything `OidcClient` reads from the config: the IdP block, the claims
 * kept, the resources each provider's login asks for, and the redirect
 * URIs. The resources as the client derives them, not the routes: adding
 * or removing a route that declares no new resource keeps the running
 * client, discovered, so such a reload does not wait for (or fail on) the
 * IdP.
 */
function clientBasis(config: GatehouseConfig): unknown {
  return {
    providers: config.identityProviders,
    claims: config.session.claims,
    resources: config.identityProviders.map((p) => configuredResources(config, p.name)),
    publicUrl: config.server.publicUrl,
    basePath: config.auth.basePath,
    // The clients refuse a token over it, as they read each answer.
    maxTokenSize: config.tokens.maxSize,
  }
}

/** Everything `IdpParts` reads: the clients' settings and the token settings (`tokens`). */
function idpBasis(config: GatehouseConfig): unknown {
  return { clients: clientBasis(config), tokens: config.tokens }
}
