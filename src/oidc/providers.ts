import { gatehouseError } from '../errors.js'
import type {
  AudienceToken,
  CachedToken,
  ClientRegistration,
  DpopKey,
  SessionIssuer,
  TokenAudience,
  TokenSet,
} from '../types.js'
import type { OidcClient } from './client.js'

/**
 * The configured identity providers, each with its own client, by name,
 * in configured order: the first is the one `/auth/login` uses without
 * `?idp=`. A session names its provider (`SessionData.idp`) and records the
 * issuer and client id its tokens came from (`registration`), and every
 * call made for it (refresh, per-route token, revocation, logout) goes to
 * that provider's client through here, and only while that provider still
 * has that issuer and client id, so no call of one provider's session ever
 * reaches another provider, whatever a reload makes of the name.
 */
export class IdentityProviders {
  readonly #byName: ReadonlyMap<string, OidcClient>
  readonly #default: OidcClient
  readonly #startedWith: ReadonlyMap<string, ClientRegistration>
  /** Every configured provider, a frontend's or not: whose indexes a logout searches. */
  readonly #everyone: ReadonlyMap<string, OidcClient>
  /** Of a frontend's view (`only`): the providers configured that it does not sign in with. */
  #others: ReadonlySet<string> = new Set()
  /** Every provider name the process has configured, with each issuer and client id it had. */
  readonly #had: ProviderNamesHad

  /**
   * `clients`: one per provider, names unique (the config checked them).
   * `startedWith`: each provider's registration in the config the process
   * started with, which sessions sealed before sessions recorded theirs
   * are taken to have (see `issued`); default: those of `clients`.
   * `everyone`: every configured provider, when `clients` are a frontend's
   * share of them; default: `clients`.
   * `had`: the provider names of every config the process has had
   * (reloads), which `clients` are noted in; default: a record of `clients` alone.
   */
  constructor(
    clients: readonly OidcClient[],
    startedWith?: ReadonlyMap<string, ClientRegistration>,
    everyone?: ReadonlyMap<string, OidcClient>,
    had: ProviderNamesHad = new ProviderNamesHad(),
  ) {
    if (clients.length === 0) throw new TypeError('at least one identity provider is needed')
    this.#default = clients[0]!
    this.#byName = new Map(clients.map((client) => [client.name, client]))
    this.#startedWith = startedWith ?? registrations(clients)
    this.#everyone = everyone ?? this.#byName
    this.#had = had
    had.note(registrations(clients))
    had.presented(clients)
  }

  /**
   * The providers of `names`, in that order, judging sessions as these do
   * (a frontend's): a session of any other provider is to the view as a
   * removed provider's.
   */
  only(names: readonly string[]): IdentityProviders {
    const view = new IdentityProviders(
      names.map((name) => this.#byName.get(name)!),
      this.#startedWith,
      this.#everyone,
      this.#had,
    )
    view.#others = new Set([...this.#byName.keys(), ...this.#others].filter((name) => !names.includes(name)))
    return view
  }

  /** The first provider: `/auth/login` without `?idp=`, and `token: client` routes whose route and frontend name none. */
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
   * The provider that issued a session's tokens (or a login's), if it is
   * still configured as it was: `undefined` when a reload removed its
   * name, or gave the name another issuer or client id. Such a session
   * can refresh, revoke and end nothing at any provider: its tokens would
   * go to a party they were not issued to.
   */
  ofSession(session: SessionIssuer): OidcClient | undefined {
    const client = this.#byName.get(session.idp)
    return client && this.issued(client, session.registration) ? client : undefined
  }

  /**
   * True when `client` is the registration that issued tokens recorded
   * with `registration`. A client id is compared as well as the issuer:
   * a refresh token is bound to its client (RFC 6749 §6), and another
   * client of the same issuer may be another tenant or application, with
   * pairwise `sub`s (OIDC Core §8.1) that name other users.
   *
   * Without one, the session was sealed before sessions recorded it, by
   * the provider as the process started with it (an upgrade restarts it):
   * trusted while the provider still is so, and not after a reload that
   * changed it. A restart with a changed provider cannot tell.
   */
  issued(client: OidcClient, registration: ClientRegistration | undefined): boolean {
    const recorded = this.registrationOf({ idp: client.name, registration })
    return recorded !== undefined && sameRegistration(recorded, client.registration)
  }

  /**
   * The registration that issued a session's tokens: the one it recorded,
   * else (sealed before sessions recorded it) its provider's as the
   * process started; `undefined` when that provider was not configured then.
   */
  registrationOf(session: SessionIssuer): ClientRegistration | undefined {
    return session.registration ?? this.#startedWith.get(session.idp)
  }

  /**
   * The provider names whose session indexes may hold sessions whose
   * tokens `registration` issued: every configured provider with that
   * issuer and client id, in any frontend, every one the process started
   * with so (its sessions from before sessions recorded their
   * registration), and every one a config since had so: an entry a
   * reload added and a later one removed has sessions that serve until
   * their login token is due, and until 2026-12-07 a logout of the client
   * missed them. Two entries may share a client, with different
   * `authorizationParams` say; the IdP knows one client, and its logout,
   * or a user's, is for the sessions of both. Filter each name's sessions
   * with `issuedAs`: a name may since have been given another client.
   */
  namesOf(registration: ClientRegistration): string[] {
    const names = new Set<string>()
    for (const [name, client] of this.#everyone)
      if (sameRegistration(client.registration, registration)) names.add(name)
    for (const [name, started] of this.#startedWith)
      if (sameRegistration(started, registration)) names.add(name)
    for (const name of this.#had.namesOf(registration)) names.add(name)
    return [...names]
  }

  /**
   * True when a session of provider name `idp` that recorded `recorded`
   * (absent: sealed before sessions recorded it) holds tokens that
   * `registration` issued (`undefined`: one not known either).
   */
  issuedAs(
    idp: string,
    recorded: ClientRegistration | undefined,
    registration: ClientRegistration | undefined,
  ): boolean {
    return sameRegistration(this.registrationOf({ idp, registration: recorded }), registration)
  }

  /**
   * The provider of a session. One that is no longer configured as it
   * was (a reload removed it, or pointed its name elsewhere) cannot
   * refresh or end anything: the session is over, and the user signs in again.
   */
  of(session: SessionIssuer): OidcClient {
    const client = this.ofSession(session)
    if (client) return client
    const err = gatehouseError(
      'GATEHOUSE_ERR_SESSION_EXPIRED',
      this.#byName.has(session.idp)
        ? 'The identity provider this session signed in with now has another issuer or client id, which did not issue its tokens.'
        : this.#others.has(session.idp)
          ? 'The identity provider this session signed in with is no longer one this frontend signs in with.'
          : 'The identity provider this session signed in with is no longer configured.',
    )
    gone.add(err)
    throw err
  }

  /**
   * True when the session's provider, still configured as it was, now
   * presents another client certificate than `certificate`, the one a
   * token of the session was requested with (UserTokens asks), and this
   * process presented `certificate` as the same client (issuer and client
   * id) before: a reload renewed it, and a token the IdP bound to the old one (RFC 8705 §3) is good with
   * no certificate the gateway presents any more. A certificate this
   * process never had is a replica's that the reload has not reached yet,
   * or has reached already: were either to refresh the other's tokens,
   * each request that went to the other would spend a refresh while their
   * configs differ.
   */
  certificateChanged(session: SessionIssuer, certificate: string): boolean {
    const client = this.ofSession(session)
    return (
      client !== undefined &&
      client.clientCertificate !== certificate &&
      this.#had.hadPresented(client.registration, certificate)
    )
  }

  /** `OidcClient.refresh` at the session's provider (UserTokens calls it so). */
  async refresh(
    current: TokenSet,
    audience?: TokenAudience,
    dpopKey?: DpopKey,
    session?: SessionIssuer,
  ): Promise<TokenSet> {
    return (session === undefined ? this.#default : this.of(session)).refresh(current, audience, dpopKey)
  }

  /** `OidcClient.exchange` at the session's provider (UserTokens calls it so). */
  async exchange(
    subjectToken: string,
    audience: TokenAudience,
    dpopKey?: DpopKey,
    session?: SessionIssuer,
  ): Promise<AudienceToken> {
    return (session === undefined ? this.#default : this.of(session)).exchange(
      subjectToken,
      audience,
      dpopKey,
    )
  }

  /** `OidcClient.clientCredentials` at provider `idp`, the first when absent (ClientTokens calls it so). */
  async clientCredentials(scopes: readonly string[], dpop?: boolean, idp?: string): Promise<CachedToken> {
    return this.#named(idp).clientCredentials(scopes, dpop)
  }

  /**
   * The issuer and client id that provider `idp` (the first when absent)
   * gets the gateway's own tokens from: a cached token is that one's
   * (ClientTokens keys its cache by it).
   */
  clientRegistration(idp?: string): ClientRegistration {
    return this.#named(idp).registration
  }

  /** The fingerprint of the client certificate provider `idp` (the first when absent) presents (`OidcClient.clientCertificate`). */
  clientCertificate(idp?: string): string | undefined {
    return this.#named(idp).clientCertificate
  }

  #named(idp: string | undefined): OidcClient {
    const client = idp === undefined ? this.#default : this.#byName.get(idp)
    // A route names only configured providers: the config checked them.
    if (!client) throw gatehouseError('GATEHOUSE_ERR_INTERNAL', `No identity provider is named ${idp}.`)
    return client
  }

  close(): Promise<void> {
    return Promise.all(this.all.map((client) => client.close())).then(() => {})
  }
}

/**
 * Each provider name the process's configs have had, with every issuer and
 * client id it had: whose session indexes a logout of a client reads once
 * a reload has removed the entry. Only this process's: one started after
 * the removal (a restart, a replica scaled out) never had the name, and
 * its logouts miss such sessions until their login token is due. As many
 * as the configs' entries, never a peer's. With them, the client
 * certificates presented to each issuer (`IdentityProviders.certificateChanged`).
 */
export class ProviderNamesHad {
  readonly #had = new Map<string, ClientRegistration[]>()
  /**
   * Client (issuer and client id) → the fingerprints of every certificate
   * it presented, as many as the configs named. By client, not issuer:
   * another client of the issuer presenting a certificate says nothing of
   * this one's having been renewed.
   */
  readonly #certificates = new Map<string, Set<string>>()

  /** Notes each name of a config with its issuer and client id. */
  note(providers: ReadonlyMap<string, ClientRegistration>): void {
    for (const [name, registration] of providers) {
      const had = this.#had.get(name) ?? []
      if (!had.some((known) => sameRegistration(known, registration))) had.push(registration)
      this.#had.set(name, had)
    }
  }

  /** Notes the client certificate each of `clients` presents to its issuer. */
  presented(clients: readonly OidcClient[]): void {
    for (const client of clients) {
      const certificate = client.clientCertificate
      if (certificate === undefined) continue
      const key = presenter(client.registration)
      const had = this.#certificates.get(key) ?? new Set<string>()
      had.add(certificate)
      this.#certificates.set(key, had)
    }
  }

  /** Whether this process has presented `certificate` as the client `registration`. */
  hadPresented(registration: ClientRegistration, certificate: string): boolean {
    return this.#certificates.get(presenter(registration))?.has(certificate) === true
  }

  /** The names that have had `registration`. */
  namesOf(registration: ClientRegistration): string[] {
    return [...this.#had].flatMap(([name, had]) =>
      had.some((known) => sameRegistration(known, registration)) ? [name] : [],
    )
  }
}

/** The errors of `IdentityProviders.of`: no provider was asked anything. */
const gone = new WeakSet<Error>()

/**
 * Whether `err` is `IdentityProviders.of`'s: the session's provider is no
 * longer configured as it was, so the session is over and no IdP was asked.
 */
export function providerGone(err: unknown): boolean {
  return err instanceof Error && gone.has(err)
}

/** True when both are the same issuer and client id, or both are unknown. */
export function sameRegistration(
  a: ClientRegistration | undefined,
  b: ClientRegistration | undefined,
): boolean {
  return a === b || (a !== undefined && b !== undefined && a.issuer === b.issuer && a.clientId === b.clientId)
}

/** Each provider's registration, by name. */
export function registrations(clients: readonly OidcClient[]): Map<string, ClientRegistration> {
  return new Map(clients.map((client) => [client.name, client.registration]))
}

/** The issuer and the client id (quoted: it may hold a space) a certificate is presented as. */
function presenter(registration: ClientRegistration): string {
  return `${registration.issuer} ${JSON.stringify(registration.clientId)}`
}
