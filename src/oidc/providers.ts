import { gatehouseError } from '../errors.js'
import type { AudienceToken, CachedToken, DpopKey, TokenAudience, TokenSet } from '../types.js'
import type { OidcClient } from './client.js'

/**
 * The configured identity providers, each with its own client, by name,
 * in configured order: the first is the one `/auth/login` uses without
 * `?idp=`. A session names its provider (`SessionData.idp`), and every call
 * made for it (refresh, per-route token, revocation, logout) goes to that
 * provider's client through here, so no call of one provider's session
 * ever reaches another provider.
 */
export class IdentityProviders {
  readonly #byName: ReadonlyMap<string, OidcClient>
  readonly #default: OidcClient

  /** `clients`: one per provider, names unique (the config checked them). */
  constructor(clients: readonly OidcClient[]) {
    if (clients.length === 0) throw new TypeError('at least one identity provider is needed')
    this.#default = clients[0]!
    this.#byName = new Map(clients.map((client) => [client.name, client]))
  }

  /** The first provider: `/auth/login` without `?idp=`, and `token: client` routes that name none. */
  get default(): OidcClient {
    return this.#default
  }

  /** Every provider, in configured order. */
  get all(): readonly OidcClient[] {
    return [...this.#byName.values()]
  }

  /** The provider of that name, or `undefined` (`?idp=` with an unknown name). */
  get(name: string): OidcClient | undefined {
    return this.#byName.get(name)
  }

  /**
   * The provider of a session. One that is no longer configured (a reload
   * removed it) cannot refresh or end anything: the session is over, and
   * the user signs in again.
   */
  of(idp: string): OidcClient {
    const client = this.#byName.get(idp)
    if (client) return client
    throw gatehouseError(
      'GATEHOUSE_ERR_SESSION_EXPIRED',
      'The identity provider this session signed in with is no longer configured.',
    )
  }

  /** `OidcClient.refresh` at the session's provider `idp` (UserTokens calls it so). */
  async refresh(
    current: TokenSet,
    audience?: TokenAudience,
    dpopKey?: DpopKey,
    idp?: string,
  ): Promise<TokenSet> {
    return (idp === undefined ? this.#default : this.of(idp)).refresh(current, audience, dpopKey)
  }

  /** `OidcClient.exchange` at the session's provider `idp` (UserTokens calls it so). */
  async exchange(
    subjectToken: string,
    audience: TokenAudience,
    dpopKey?: DpopKey,
    idp?: string,
  ): Promise<AudienceToken> {
    return (idp === undefined ? this.#default : this.of(idp)).exchange(subjectToken, audience, dpopKey)
  }

  /** `OidcClient.clientCredentials` at provider `idp`, the first when absent (ClientTokens calls it so). */
  async clientCredentials(scopes: readonly string[], dpop?: boolean, idp?: string): Promise<CachedToken> {
    return (idp === undefined ? this.#default : this.of(idp)).clientCredentials(scopes, dpop)
  }

  close(): Promise<void> {
    return Promise.all(this.all.map((client) => client.close())).then(() => {})
  }
}
