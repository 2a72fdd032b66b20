import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { GatehouseConfig } from '../config/types.js'
import { revokingWith } from '../http/owed-revocations.js'
import { giveBackPrevious } from '../http/sign-in-grants.js'
import type { OidcClient } from '../oidc/client.js'
import type { IdentityProviders } from '../oidc/providers.js'
import { Sessions } from '../session/sessions.js'
import type { ClientTokens } from '../tokens/client-tokens.js'
import type { Coordination } from '../tokens/refresh-scope.js'
import type { UserTokens } from '../tokens/user-tokens.js'
import { Lasting } from './lasting.js'
import type { GatewayMetrics } from './metrics.js'
import type { Stores } from './stores.js'

/** What one gateway holds: its stores, its IdP client, and the sessions and tokens built on them. */
export interface GatehouseState {
  readonly config: GatehouseConfig
  readonly stores: Stores
  /** The first provider's client (`config.oidc`). */
  readonly oidc: OidcClient
  /** Every provider's client, by name; a session's calls go to `providers.of(session)`. */
  readonly providers: IdentityProviders
  readonly metrics: GatewayMetrics
  readonly sessions: Sessions
  readonly userTokens: UserTokens
  /** The user tokens of a frontend that signs in with these providers only (`IdpParts.holdUserTokens`). */
  userTokensOf(names: readonly string[] | undefined): UserTokens
  readonly clientTokens: ClientTokens
  /** What this app shares with the apps a config reload builds after it (lasting.ts). */
  readonly lasting: Lasting
  /** Resolves once each of `only` (default: every provider) has been discovered. */
  whenDiscovered(only?: readonly OidcClient[]): Promise<void>
  /** The sessions of a named frontend (`frontends[].name`), in the same store; `sessions` are the unnamed one's. */
  sessionsOf(frontend: string): Sessions
}

declare module 'fastify' {
  interface FastifyInstance {
    gatehouse: GatehouseState
  }
}

export interface ServicesOptions {
  readonly config: GatehouseConfig
  /** Clock for token expiry and session timeouts, epoch ms. */
  readonly now: () => number
  /** Stores to use instead of those named by `session.store`. */
  readonly stores?: Stores | undefined
  /** Initial lifetime of the refresh lock, ms; default: the IdP timeout plus 5 s. */
  readonly lockTtl?: number | undefined
  /** See `UserTokensOptions.coordination`: tests only. */
  readonly coordination?: Coordination | undefined
  /** See `LastingOptions.owedMax`: tests only. */
  readonly owedMax?: number | undefined
  /**
   * What outlives one config, made by the first app of the process: with
   * it, this app borrows the stores and IdP parts and closes none of them.
   * Without it, the app makes them, and closes them unless `keepLasting`.
   */
  readonly lasting?: Lasting | undefined
  /** The caller closes what this app made to outlive it (`app.gatehouse.lasting.close()`). */
  readonly keepLasting?: boolean | undefined
}

/**
 * Every client this gateway holds (stores, Redis, the IdP's HTTP client)
 * is created here, through `Lasting`, and closed in this plugin's
 * `onClose` unless it outlives this app's config; discovery starts once
 * the app is ready. Shared as `app.gatehouse`.
 */
export const services = fp(
  async function services(app: FastifyInstance, opts: ServicesOptions) {
    const { config, now } = opts
    const { metrics, refusals } = app.observers
    // Sessions, locks, caches and the IdP client outlive one config: a
    // reload's app borrows them from the first (lasting.ts).
    const lasting =
      opts.lasting ??
      (await Lasting.create(config, app.log, {
        now,
        stores: opts.stores,
        lockTtl: opts.lockTtl,
        coordination: opts.coordination,
        owedMax: opts.owedMax,
        metrics,
        refusals,
      }))
    const { stores } = lasting
    // A reload's config takes over the certificates when it is swapped in (reload.ts).
    if (!opts.lasting) lasting.certificates.use(config)
    const parts = lasting.idpFor(config, app.observers)
    const { oidc, providers, userTokens, clientTokens } = parts
    const sessionsOf = (frontend: string): Sessions => {
      const made: Sessions = new Sessions(stores.sessions, config.session, now, {
        giveBack: (request, ended, signedIn) =>
          giveBackPrevious(request, ended, signedIn, { sessions: made, providers }),
        frontend,
        ends: lasting.dpopKeys,
        onUnreadable: (reason) => metrics.sessionsUnreadable.inc({ reason }),
      })
      return made
    }
    const sessions = sessionsOf('')
    const frontendTokens = parts.holdUserTokens()

    app.decorate('gatehouse', {
      config,
      stores,
      oidc,
      providers,
      metrics,
      sessions,
      userTokens,
      userTokensOf: (names) => frontendTokens.of(names),
      clientTokens,
      lasting,
      whenDiscovered: (only) => parts.whenDiscovered(only),
      sessionsOf,
    } satisfies GatehouseState)
    // Revocations of ended sessions' refresh tokens owed since the IdP did
    // not answer are made with this app's providers, until a reload's next
    // app takes over (lasting.ts).
    const unserve = lasting.owedRevocations.serve(revokingWith(providers))

    app.addHook('onReady', async () => {
      parts.discover(app.log)
    })
    app.addHook('onClose', async () => {
      // After the shutdown's last pass (`lastPass`), which needs these providers open.
      unserve()
      frontendTokens.release()
      await lasting.release(parts)
      if (!opts.lasting && !opts.keepLasting) await lasting.close()
    })
  },
  { name: 'gatehouse-services', fastify: '5.x', dependencies: ['gatehouse-observability'] },
)

/**
 * The shutdown's last pass over what the process owes (`Lasting.lastPass`):
 * the revocations the IdP did not answer, the back-channel logouts the
 * store did not carry out and the logout tokens held unverified, tried once more as the app that serves last
 * closes. Fastify runs `onClose` hooks last registered first, so this is
 * registered after every part: its hook runs while the back-channel
 * logout routes still carry out the owed logouts and hold the tokens, and before the services'
 * own hook releases the providers the revocations are made with. Made in
 * that hook, as the revocations' pass once was, it came after the routes
 * had stopped serving, and every owed logout was dropped untried.
 */
export const lastPass = fp(
  async function lastPass(app: FastifyInstance) {
    app.addHook('onClose', async () => {
      // A shutdown, not a reload's swap: the next app carries on with what is owed.
      const { lasting } = app.gatehouse
      if (lasting.makesLastPass(app)) await lasting.lastPass()
    })
  },
  { name: 'gatehouse-last-pass', fastify: '5.x', dependencies: ['gatehouse-services'] },
)
