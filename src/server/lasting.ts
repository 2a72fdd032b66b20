import { isDeepStrictEqual } from 'node:util'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { GatehouseConfig, IdentityProviderConfig } from '../config/types.js'
import { HeldKeys } from '../dpop/held-keys.js'
import { DpopNonces } from '../dpop/nonces.js'
import type { HeldLogout } from '../http/held-logout-attempts.js'
import { HeldHandover } from '../http/held-logout-tokens.js'
import { type OwedLogout, OwedLogouts } from '../http/owed-logouts.js'
import { OwedRevocations } from '../http/owed-revocations.js'
import { configuredResources, type OidcClient, type OidcObserver } from '../oidc/client.js'
import { ClientRefusals } from '../oidc/client-refusals.js'
import { type IdentityProviders, ProviderNamesHad, registrations } from '../oidc/providers.js'
import { CookieNamesHad } from '../proxy/cookie-names-had.js'
import { SocketLimits } from '../proxy/websocket/limits.js'
import { CertificateExpiry } from '../tls/certificate-expiry.js'
import { ClientTokens, type ClientTokensOptions } from '../tokens/client-tokens.js'
import type { LateWrites } from '../tokens/late-writes.js'
import { MemoryTokenCache } from '../tokens/memory-token-cache.js'
import type { RefreshObserver } from '../tokens/refresh-observer.js'
import type { Coordination } from '../tokens/refresh-scope.js'
import { RefusedClient } from '../tokens/refused-client.js'
import type { TokenCache } from '../tokens/types.js'
import { DEFAULT_UNAVAILABLE_LIMIT, UnavailableLimit } from '../tokens/unavailable-limit.js'
import { UserTokens, type UserTokensOptions } from '../tokens/user-tokens.js'
import type { ClientRegistration } from '../types.js'
import { DrainDeadline } from './drain-deadline.js'
import { FrontendUserTokens } from './frontend-user-tokens.js'
import { GatewayMetrics } from './metrics.js'
import { ProviderClientPool, type ProviderClients } from './provider-clients.js'
import { createStores, type Stores } from './stores.js'

export interface LastingOptions {
  /** Clock for token expiry and session timeouts, epoch ms. */
  readonly now: () => number
  /** Stores to use instead of those named by `session.store`; closed with the rest. */
  readonly stores?: Stores | undefined
  /** Initial lifetime of the refresh lock, ms; default: the IdP timeout plus 5 s. */
  readonly lockTtl?: number | undefined
  /** See `UserTokensOptions.coordination`: tests only. */
  readonly coordination?: Coordination | undefined
  /** Most revocations, and most logouts, owed at once; default 10,000 each. Tests only. */
  readonly owedMax?: number | undefined
  /** The metrics and refusals the first app's observers report to; made here when absent. */
  readonly metrics?: GatewayMetrics | undefined
  readonly refusals?: ClientRefusals | undefined
}

/** What the IdP parts report to (server/observability.ts). */
export interface IdpObservers {
  /** The observer of one provider's client. */
  readonly idp: (provider: IdentityProviderConfig) => OidcObserver
  readonly refresh: RefreshObserver
  readonly clientTokens: NonNullable<ClientTokensOptions['observer']>
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
    options: LastingOptions,
    failing: UnavailableLimit,
    lateWrites: LateWrites,
    keys: HeldKeys,
    clientTokenCopy: TokenCache,
  ) {
    const { now } = options
    this.#audiences = config.routes.length + 1
    this.basis = idpBasis(config)
    this.clients = clients
    this.providers = clients.providers
    this.oidc = this.providers.default
    // Both token kinds fetch once per lifetime under the same lock discipline.
    // The locks are the stores', which outlive these parts: a refresh that a
    // previous config's single-flight still holds is waited for, never run twice.
    const fetchOnce = {
      locks: stores.locks,
      oidc: this.providers,
      // One provider's refusal of the gateway's credentials holds back both
      // token kinds; new parts, as a reload that changes the credentials
      // makes, ask again at once.
      refusedClient: new RefusedClient(now, this.providers.default.name),
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
      audiences: () => this.#audiences,
      ended: (id, key) => keys.ended(id, key),
    }
    this.userTokens = new UserTokens(userTokensOptions)
    // The same store, locks, back-offs and refusals as `userTokens`; a
    // flight of their own, as a session is only ever its frontend's.
    this.frontendTokens = new FrontendUserTokens(
      (names) => new UserTokens({ ...userTokensOptions, oidc: this.providers.only(names) }),
    )
    this.clientTokens = new ClientTokens({
      ...fetchOnce,
      cache: clientTokenCopy,
      cooldown: { store: stores.cooldowns, ms: config.tokens.retryCooldown },
      observer: observers.clientTokens,
    })
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
 * What outlives one config: the stores (sessions, locks, caches and the
 * Redis connections under them), the metrics, the IdP's refusals, the
 * WebSocket counts and the root logger, made once per process; and the current `IdpParts`,
 * kept while the settings they read stay the same. Each app built from a
 * config borrows them; none rebuilds them, so a reload loses no session,
 * no lock and no cached token.
 */
export class Lasting {
  readonly stores: Stores
  readonly metrics: GatewayMetrics
  /** The IdP's refusals of the gateway's own credentials, for `/readyz`. */
  readonly refusals: ClientRefusals
  readonly log: FastifyBaseLogger
  /** `server.maxWebSockets` and `session.maxWebSockets`, counted over every app. */
  readonly sockets: SocketLimits
  /** The expiry of the client certificates in use, logged and measured across reloads. */
  readonly certificates: CertificateExpiry
  /** Every cache of DPoP keys, which a session's end empties of its key (src/dpop/held-keys.ts). */
  readonly dpopKeys = new HeldKeys()
  /**
   * The nonce each DPoP upstream last sent (RFC 9449 §9): the upstream's,
   * whatever the config, so a reload's routes send it too, and a body they
   * cannot replay is not challenged for want of it.
   */
  readonly upstreamNonces = new DpopNonces()
  /** When a shutdown's drain runs out, once a signal has started one (start.ts). */
  readonly drain = new DrainDeadline()
  /** The cookie names of every config the process has run, which no upstream is sent or may set. */
  readonly cookiesHad = new CookieNamesHad()
  /**
   * Back-channel logouts a store outage left undone, carried out by
   * whichever app serves once the store answers: a reload keeps them; a
   * shutdown tries them once more (`lastPass`), then drops what is left
   * (and says so).
   */
  readonly owedLogouts: OwedLogouts<OwedLogout>
  /**
   * Revocations of ended sessions' refresh tokens the IdP did not answer,
   * made by whichever app serves once it does: a reload keeps them; a
   * shutdown tries them once more (`lastPass`), then drops what is left
   * (and says so).
   */
  readonly owedRevocations: OwedRevocations
  /**
   * Back-channel logout tokens held unverified while their issuer's keys
   * could not be read, passed from an app a reload retires to the next,
   * which verifies them with its providers; a shutdown tries them once more
   * (`lastPass`), then drops what is left (and says so).
   */
  readonly heldLogouts: HeldHandover<HeldLogout>
  readonly #options: LastingOptions
  /** IdP parts some app holds, by the settings they were built from. */
  readonly #idp = new Set<IdpParts>()
  /** The provider clients those parts use, by the settings they were built from. */
  readonly #clients = new Set<ProviderClients>()
  /** Each provider's client those hold, shared by them while its settings are the same. */
  readonly #pool: ProviderClientPool
  #unwatchStore: (() => void) | undefined
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
  /** The shutdown's last pass over what is owed, once the first app closing in it asks. */
  #lastPass: Promise<void> | undefined
  #shuttingDown = false
  /** Which app's close makes the last pass (`shutDown`); any, when absent. */
  #servesLast: ((app: FastifyInstance) => boolean) | undefined

  private constructor(
    stores: Stores,
    log: FastifyBaseLogger,
    config: GatehouseConfig,
    options: LastingOptions,
  ) {
    this.stores = stores
    this.log = log
    this.metrics = options.metrics ?? new GatewayMetrics()
    this.metrics.watchStore(stores.sessions)
    this.refusals = options.refusals ?? new ClientRefusals()
    this.sockets = new SocketLimits(config.server.maxWebSockets, config.session.maxWebSockets)
    this.certificates = new CertificateExpiry(this.metrics.registry, log, options.now)
    this.#options = options
    this.#pool = new ProviderClientPool(options.now, this.dpopKeys)
    this.#failing = new UnavailableLimit(DEFAULT_UNAVAILABLE_LIMIT, options.now)
    this.#clientTokens = stores.clientTokens ?? new MemoryTokenCache(options.now)
    this.owedLogouts = new OwedLogouts({ log, max: options.owedMax })
    this.owedRevocations = new OwedRevocations({ log, max: options.owedMax })
    this.heldLogouts = new HeldHandover(log)
  }

  static async create(
    config: GatehouseConfig,
    log: FastifyBaseLogger,
    options: LastingOptions,
  ): Promise<Lasting> {
    const stores = options.stores ?? (await createStores(config, options.now, log))
    const lasting = new Lasting(stores, log, config, options)
    if (stores.sessions.kind === 'redis') {
      // Loaded only for Redis, as in createStores: memory mode never loads ioredis.
      const { reportSessionCache } = await import('./redis-stores.js')
      reportSessionCache(stores.sessions, log)
      if (stores.redis) {
        const { logAvailability } = await import('../redis/availability.js')
        const { exportEvictedKeys, watchEviction } = await import('../redis/eviction.js')
        const { exportRefusals, watchRefusals } = await import('../redis/refusals.js')
        const target = config.session.store.display
        exportEvictedKeys(stores.redis, lasting.metrics.registry)
        const unwatch = [logAvailability(stores.redis, log, target), watchEviction(stores.redis, log, target)]
        if (stores.refusals) {
          exportRefusals(stores.refusals, lasting.metrics.registry)
          unwatch.push(watchRefusals(stores.refusals, stores.redis, log, target))
        }
        lasting.#unwatchStore = () => {
          for (const stop of unwatch) stop()
        }
      }
    }
    return lasting
  }

  /**
   * The IdP parts for `config`, held until `release`: those an app holds
   * already when the settings they read are the same, else new ones, not
   * yet discovered.
   */
  idpFor(config: GatehouseConfig, observers: IdpObservers): IdpParts {
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
      parts = new IdpParts(
        config,
        clients,
        this.stores,
        observers,
        this.#options,
        this.#failing,
        this.#lateWrites,
        this.dpopKeys,
        this.#clientTokens,
      )
      this.#idp.add(parts)
    }
    parts.holders++
    parts.serve(config)
    return parts
  }

  /**
   * How many lists of providers the frontends of the apps holding IdP parts
   * have user tokens for (`IdpParts.frontendTokens`): tests.
   */
  get frontendTokenLists(): number {
    let lists = 0
    for (const parts of this.#idp) lists += parts.frontendTokens.size
    return lists
  }

  /** Lets go of parts from `idpFor`; the last holder of a client closes it. */
  async release(parts: IdpParts): Promise<void> {
    if (--parts.holders > 0) return
    this.#idp.delete(parts)
    const { clients } = parts
    if (--clients.holders > 0) return
    this.#clients.delete(clients)
    await this.#pool.release(clients)
  }

  /**
   * The process shuts down (start.ts): the app that closes from now on
   * and `servesLast` names (any, without it) makes `lastPass` first.
   */
  shutDown(servesLast?: (app: FastifyInstance) => boolean): void {
    this.#shuttingDown = true
    this.#servesLast = servesLast
  }

  /**
   * Whether `app`'s close makes the shutdown's last pass: the pass is made
   * once, so an app that closes while another still answers requests that
   * may owe more (one a reload built and the shutdown closes unused, or the
   * one serving while a replaced one finishes its requests) must not make
   * it. Asked once per app, as it closes.
   */
  makesLastPass(app: FastifyInstance): boolean {
    return this.#shuttingDown && (this.#servesLast?.(app) ?? true)
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown
  }

  /**
   * One last pass over the revocations and the back-channel logouts owed,
   * and the logout tokens held unverified, as the process shuts down, with the app serving last, before it
   * closes (services.ts `lastPass`): an IdP that came back during its backoff
   * would otherwise keep the grants live, and a store that came back the
   * sessions of users the IdP signed out, as would an issuer whose keys
   * could be read again. Until the drain is nearly out
   * (`drain.onEnd`; a `close()` with no signal has no drain, and its calls
   * are bounded by their IdP's `timeout` and the store's alone), then what
   * is left is dropped with the rest. Once, however many apps close.
   */
  lastPass(): Promise<void> {
    this.#lastPass ??= (async () => {
      const stop = new AbortController()
      const cancel = this.drain.onEnd(() => stop.abort())
      try {
        await Promise.all([
          this.owedRevocations.lastPass(stop.signal),
          this.owedLogouts.lastPass(stop.signal),
          this.heldLogouts.lastPass(stop.signal),
        ])
      } finally {
        cancel()
      }
    })()
    return this.#lastPass
  }

  /** Closes the stores; after every app has released its IdP parts. */
  async close(): Promise<void> {
    // Our own close of the connection is no outage.
    this.#unwatchStore?.()
    this.dpopKeys.close()
    this.owedLogouts.close()
    this.owedRevocations.close()
    // The drain's end bounds the wait on the store too: a shutdown that had
    // run its last pass to that end then waited up to 2 s more on a frozen
    // Redis's QUIT, past the drain, and was cut off with exit 1 (start.ts).
    const stop = new AbortController()
    const cancel = this.drain.onEnd(() => stop.abort())
    try {
      await this.stores.close(stop.signal)
    } finally {
      cancel()
    }
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
