import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { HeldKeys } from '../dpop/held-keys.js'
import { DpopNonces } from '../dpop/nonces.js'
import type { HeldLogout } from '../http/held-logout-attempts.js'
import { HeldHandover } from '../http/held-logout-tokens.js'
import { type OwedLogout, OwedLogouts } from '../http/owed-logouts.js'
import { OwedRevocations } from '../http/owed-revocations.js'
import { ClientRefusals } from '../oidc/client-refusals.js'
import { CookieNamesHad } from '../proxy/cookie-names-had.js'
import { SocketLimits } from '../proxy/websocket/limits.js'
import { CertificateExpiry } from '../tls/certificate-expiry.js'
import { DrainDeadline } from './drain-deadline.js'
import { type IdpObservers, type IdpParts, IdpPartsInUse } from './idp-parts.js'
import { GatewayMetrics } from './metrics.js'
import { watchRedisStores } from './store-watch.js'
import { createStores, type Stores } from './stores.js'
import type { TokenServicesOptions } from './token-services.js'

export interface LastingOptions extends TokenServicesOptions {
  /** Stores to use instead of those named by `session.store`; closed with the rest. */
  readonly stores?: Stores | undefined
  /** Most revocations, and most logouts, owed at once; default 10,000 each. Tests only. */
  readonly owedMax?: number | undefined
  /** The metrics and refusals the first app's observers report to; made here when absent. */
  readonly metrics?: GatewayMetrics | undefined
  readonly refusals?: ClientRefusals | undefined
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
  /** The IdP parts the apps hold, and what their token services share (idp-parts.ts). */
  readonly #idp: IdpPartsInUse
  #unwatchStore: (() => void) | undefined
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
    this.#idp = new IdpPartsInUse(stores, options, this.dpopKeys)
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
    // Memory mode never loads ioredis (store-watch.ts).
    if (stores.sessions.kind === 'redis')
      lasting.#unwatchStore = await watchRedisStores(stores, config, lasting.metrics, log)
    return lasting
  }

  /**
   * The IdP parts for `config`, held until `release`: those an app holds
   * already when the settings they read are the same, else new ones, not
   * yet discovered.
   */
  idpFor(config: GatehouseConfig, observers: IdpObservers): IdpParts {
    return this.#idp.hold(config, observers)
  }

  /**
   * How many lists of providers the frontends of the apps holding IdP parts
   * have user tokens for (`IdpParts.frontendTokens`): tests.
   */
  get frontendTokenLists(): number {
    return this.#idp.frontendTokenLists
  }

  /** Lets go of parts from `idpFor`; the last holder of a client closes it. */
  release(parts: IdpParts): Promise<void> {
    return this.#idp.release(parts)
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
