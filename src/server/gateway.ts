import type { GatehouseConfig } from '../config/types.js'
import { draining } from './draining.js'
import { errorAnswers } from './error-handler.js'
import { frontends, frontendsOfRequests, hasNamedFrontends, soleFrontendCookies } from './frontends.js'
import { createInstance, type InstanceOptions } from './instance.js'
import { observability } from './observability.js'
import { ownRoutes } from './own-route-deps.js'
import { proxy } from './proxy.js'
import { requestHygiene } from './request-hygiene.js'
import { lastPass, type ServicesOptions, services } from './services.js'

/** Seams for tests and embedding; production passes none of them. */
export interface GatewayOptions extends InstanceOptions {
  /** Clock for token expiry and session timeouts, epoch ms. */
  readonly now?: () => number
  /** Stores to use instead of those named by `session.store`. */
  readonly stores?: ServicesOptions['stores']
  /** Initial lifetime of the refresh lock, ms; default: the IdP timeout plus 5 s. */
  readonly lockTtl?: number
  /** See `UserTokensOptions.coordination`: tests only. */
  readonly coordination?: ServicesOptions['coordination']
  /** See `LastingOptions.owedMax`: tests only. */
  readonly owedMax?: number
  /** How often open WebSockets, and answers still streaming, re-check their session, ms; default 5 s. */
  readonly websocketRecheck?: number
  /** What a config reload's app borrows from the first (see `ServicesOptions.lasting`). */
  readonly lasting?: ServicesOptions['lasting']
  /** See `ServicesOptions.keepLasting`. */
  readonly keepLasting?: boolean
}

/**
 * Builds the gateway for one config without listening, so tests can
 * `inject` and the CLI can own `listen`, signals and shutdown. Each part is
 * a named plugin, registered in the order its hooks must run.
 */
export async function buildGateway(config: GatehouseConfig, options: GatewayOptions = {}) {
  const now = options.now ?? Date.now
  const app = createInstance(config, options)

  // The one way out for errors, set before any part can fail.
  await app.register(errorAnswers, {
    signIn: `${config.auth.basePath}/login`,
    frontendOf: frontendsOfRequests(config),
  })
  // Metrics, the access log, traces and the observers the services report
  // to. Before the refusals: with tracing on, a request's server span starts
  // in its first hook, so a refused request is traced too.
  await app.register(observability, {
    logging: config.logging,
    firstProvider: config.oidc.name,
    tracing: config.tracing,
    labelled: config,
    shared: options.lasting,
  })
  // Stateless refusals first of the hooks that answer, then the refusal of
  // requests that come while the app closes; then the cookies, so a
  // refused request costs no session work. Named frontends each register
  // their own cookies, in their own scope (frontends.ts).
  await app.register(requestHygiene)
  await app.register(draining)
  await app.register(soleFrontendCookies, { config, now })
  // Stores, the IdP client, sessions and tokens, as `app.gatehouse`.
  await app.register(services, {
    config,
    now,
    stores: options.stores,
    lockTtl: options.lockTtl,
    coordination: options.coordination,
    owedMax: options.owedMax,
    lasting: options.lasting,
    keepLasting: options.keepLasting,
  })

  if (hasNamedFrontends(config))
    await app.register(frontends, { config, now, websocketRecheck: options.websocketRecheck })
  else {
    const { providers, sessions } = app.gatehouse
    await app.register(ownRoutes, { config, providers, sessions, now })
    await app.register(proxy, { config, now, websocketRecheck: options.websocketRecheck })
  }
  // Last: its close hook runs first (Fastify runs them last registered
  // first), while the routes still carry out the owed logouts.
  await app.register(lastPass)
  return app
}
