/**
 * The identity providers' clients a config's apps call, each provider's
 * kept across a reload while the settings it reads stay the same, so that
 * a reload changing one provider's entry neither rebuilds nor waits for
 * the others (idp-parts.ts holds the pool; reload.ts waits only for a client
 * with no document to start from).
 */
import { isDeepStrictEqual } from 'node:util'
import type { FastifyBaseLogger } from 'fastify'
import type { GatehouseConfig, IdentityProviderConfig } from '../config/types.js'
import type { HeldKeys } from '../dpop/held-keys.js'
import { configuredResources, OidcClient, type OidcObserver } from '../oidc/client.js'
import { type Discovery, discoverWithRetry, reportDiscovered } from '../oidc/discovery.js'
import { IdentityProviders, type ProviderNamesHad } from '../oidc/providers.js'
import type { ClientRegistration } from '../types.js'

/**
 * One provider's client, discovered once and shared by every
 * `ProviderClients` whose config gives that provider the same settings
 * (`providerBasis`): a reload that changes another provider's entry keeps
 * it, discovered or still being discovered, with its connection and DPoP
 * nonces. Its discovery in the background is its own, and stops with it.
 */
class HeldClient {
  readonly client: OidcClient
  /** The provider's entry it was made for. */
  readonly provider: IdentityProviderConfig
  readonly basis: unknown
  /** `ProviderClients` holding it; the last to let go closes it. */
  holders = 0
  /** Started from another client's document (`OidcClient.startFrom`): reported once discovery is started. */
  #startedFrom: boolean
  #discovery: Discovery | undefined
  /** Takes its DPoP handles out of `HeldKeys` again. */
  readonly #unkeep: () => void

  constructor(
    client: OidcClient,
    provider: IdentityProviderConfig,
    basis: unknown,
    keys: HeldKeys,
    startedFrom: boolean,
  ) {
    this.client = client
    this.provider = provider
    this.basis = basis
    this.#startedFrom = startedFrom
    // A session's end drops its key's handle at whichever provider made it.
    this.#unkeep = keys.keep(client.dpopProofs)
  }

  /** Discovers it in the background, retrying, unless it is discovered or being discovered. */
  discover(log: FastifyBaseLogger): void {
    if (this.#startedFrom) {
      this.#startedFrom = false
      log.info(
        { issuer: this.client.issuer },
        'the identity provider starts from the document discovered before; it is discovered again with the reload',
      )
      // What this entry's settings make of the document (the client authentication it advertises).
      reportDiscovered(this.client, log)
    }
    if (this.#discovery || this.client.discovered) return
    this.#discovery = discoverWithRetry(this.client, log)
  }

  whenDiscovered(): Promise<void> {
    if (this.client.discovered) return Promise.resolve()
    if (!this.#discovery) return Promise.reject(new Error('gateway is not ready yet'))
    return this.#discovery.ready
  }

  async close(): Promise<void> {
    this.#discovery?.stop()
    this.#unkeep()
    await this.client.close()
  }
}

/**
 * The identity providers' clients of one config, as `IdentityProviders`,
 * shared by every `IdpParts` built from the same client settings
 * (`clientBasis`), so a reload that changes only how tokens are refreshed
 * keeps them; each client is a `HeldClient`, which other sets may share.
 */
export class ProviderClients {
  readonly providers: IdentityProviders
  readonly basis: unknown
  readonly held: readonly HeldClient[]
  /** Parts using these clients; the last to let go releases them. */
  holders = 0

  constructor(providers: IdentityProviders, held: readonly HeldClient[], basis: unknown) {
    this.providers = providers
    this.held = held
    this.basis = basis
  }

  /**
   * Discovers each provider in the background, retrying, unless it is
   * discovered or being discovered. Each on its own: one provider that is
   * down delays only its own logins.
   */
  discover(log: FastifyBaseLogger): void {
    for (const held of this.held) held.discover(log.child({ idp: held.client.name }))
  }

  /** Resolves once each of `only` (default: every provider) has been discovered. */
  whenDiscovered(only?: readonly OidcClient[]): Promise<void> {
    const waited = only === undefined ? this.held : this.held.filter((held) => only.includes(held.client))
    return Promise.all(waited.map((held) => held.whenDiscovered())).then(() => {})
  }
}

/**
 * Every provider client some `ProviderClients` holds, oldest first: a new
 * set takes the client of each provider whose settings are the same as a
 * held one's (`providerBasis`), and makes the others.
 */
export class ProviderClientPool {
  readonly #held = new Set<HeldClient>()
  readonly #now: () => number
  readonly #keys: HeldKeys

  constructor(now: () => number, keys: HeldKeys) {
    this.#now = now
    this.#keys = keys
  }

  /**
   * The clients of `config`'s providers, held until `release`. `basis`:
   * the settings the set is shared by (idp-parts.ts `clientBasis`); the
   * rest as `IdentityProviders` takes them.
   */
  clientsOf(
    config: GatehouseConfig,
    observer: (provider: IdentityProviderConfig) => OidcObserver,
    basis: unknown,
    startedWith: ReadonlyMap<string, ClientRegistration> | undefined,
    had: ProviderNamesHad,
  ): ProviderClients {
    const held = config.identityProviders.map((provider) => this.#clientOf(config, provider, observer))
    for (const client of held) client.holders++
    const providers = new IdentityProviders(
      held.map((client) => client.client),
      startedWith,
      undefined,
      had,
    )
    return new ProviderClients(providers, held, basis)
  }

  /** Lets go of `clients`; the last holder of a client closes it. */
  async release(clients: ProviderClients): Promise<void> {
    const unheld = clients.held.filter((held) => --held.holders === 0)
    for (const held of unheld) this.#held.delete(held)
    await Promise.all(unheld.map((held) => held.close()))
  }

  /**
   * The client of `provider` in `config`: one held already for the same
   * settings (`providerBasis`), or a new one, which starts from the
   * document of a held client that discovery would fetch and check alike
   * (`sameDiscovery`), the newest, when one has been discovered.
   */
  #clientOf(
    config: GatehouseConfig,
    provider: IdentityProviderConfig,
    observer: (provider: IdentityProviderConfig) => OidcObserver,
  ): HeldClient {
    const basis = providerBasis(config, provider)
    const held = [...this.#held]
    const kept = held.find((client) => isDeepStrictEqual(client.basis, basis))
    if (kept) return kept
    const client = new OidcClient(config, this.#now, observer(provider), undefined, provider)
    const from = held.findLast((other) => other.client.discovered && sameDiscovery(other.provider, provider))
    if (from) client.startFrom(from.client)
    const made = new HeldClient(client, provider, basis, this.#keys, from !== undefined)
    this.#held.add(made)
    return made
  }
}

/**
 * Everything one provider's `OidcClient` reads: its entry, and of the rest
 * of the config what `clientBasis` holds, the resources its own login asks
 * for alone. A reload that changes another provider's entry keeps its client.
 */
function providerBasis(config: GatehouseConfig, provider: IdentityProviderConfig): unknown {
  return {
    provider,
    claims: config.session.claims,
    resources: configuredResources(config, provider.name),
    publicUrl: config.server.publicUrl,
    basePath: config.auth.basePath,
    maxTokenSize: config.tokens.maxSize,
  }
}

/**
 * Whether discovery would fetch and check the same document for both
 * entries: the same issuer, which names the document's URL and is all its
 * checks read (`OidcClient.discover`), reached over the same connection
 * (`tls`: the CAs the IdP's certificate must chain to, and the client
 * certificate). Anything else an entry sets (scopes, client id and
 * credentials, `profile`, `par`, `dpop`, timeouts, parameters) is read
 * from the document at each call, or made of it again (`startFrom`).
 */
function sameDiscovery(a: IdentityProviderConfig, b: IdentityProviderConfig): boolean {
  return a.issuer === b.issuer && isDeepStrictEqual(a.tls, b.tls)
}
