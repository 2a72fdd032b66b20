import type { IncomingMessage } from 'node:http'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { FrontendConfig, GatehouseConfig } from '../config/types.js'
import { healthRoutes } from '../http/health.js'
import type { IdentityProviders } from '../oidc/providers.js'
import { cookiesPlugin } from '../session/cookies.js'
import { frontendErrorAnswers } from './error-handler.js'
import { FRONTEND_CONSTRAINT, frontendConstraint, frontendOf, ownsPath } from './frontend-select.js'
import { ownRoutes } from './own-route-deps.js'
import { proxy } from './proxy.js'

export interface FrontendsOptions {
  readonly config: GatehouseConfig
  /** Clock of the sessions, epoch ms. */
  readonly now: () => number
  /** How often open WebSockets, and answers still streaming, re-check their session, ms; default 5 s. */
  readonly websocketRecheck?: number | undefined
}

/** True with `frontends:`; false for the one frontend of a config without them. */
export function hasNamedFrontends(config: Pick<GatehouseConfig, 'frontends'>): boolean {
  return config.frontends[0]!.name !== ''
}

/**
 * With `frontends:`, the frontend a request is for, as the router picks
 * it: what the root's answers may tell of the routes at its path
 * (wrong-method.ts). `undefined` for the one frontend of a config without them.
 */
export function frontendsOfRequests(config: GatehouseConfig): ((req: IncomingMessage) => string) | undefined {
  return hasNamedFrontends(config) ? frontendOf(config) : undefined
}

/**
 * The session cookies of a config without `frontends:`, on the root, as
 * they were before frontends existed; named frontends each register their
 * own in their scope (`frontends`), so this registers nothing for them.
 */
export const soleFrontendCookies = fp(
  async function soleFrontendCookies(
    app: FastifyInstance,
    opts: { config: GatehouseConfig; now: () => number },
  ) {
    if (!hasNamedFrontends(opts.config)) await app.register(cookiesPlugin, opts)
  },
  { name: 'gatehouse-sole-frontend-cookies', fastify: '5.x' },
)

/**
 * The config as one named frontend sees it: its origin, cookie, sign-in
 * path and routes in place of the instance's, so the sign-in routes, the
 * cookies and the proxy read it as they read a config without frontends.
 * `frontends` keeps them all: the proxy keeps every frontend's cookies
 * from its upstreams.
 */
export function frontendView(config: GatehouseConfig, frontend: FrontendConfig): GatehouseConfig {
  return {
    ...config,
    server: { ...config.server, publicUrl: frontend.publicUrl, secure: frontend.secure },
    session: { ...config.session, cookieName: frontend.cookieName },
    auth: { ...config.auth, basePath: frontend.auth.basePath },
    routes: frontend.routes,
  }
}

/**
 * The providers a frontend signs in with (`frontends[].identityProviders`),
 * its first the one `/login` uses without `?idp=`; any other name there is
 * unknown, 400 before anything goes to a provider. Its back-channel logout
 * takes only their logout tokens, and ends their sessions in every frontend.
 */
function providersOf(all: IdentityProviders, frontend: FrontendConfig): IdentityProviders {
  const names = frontend.identityProviders
  if (names === undefined) return all
  return all.only(names)
}

/**
 * `frontends[]`: each named frontend in a scope of its own, with its own
 * session cookies, sign-in routes, error pages and proxied routes, every
 * route constrained to the frontend (`frontend-select.ts`), so nothing of
 * one is reached through another. They share the stores, the locks and
 * the IdP client of `app.gatehouse`; `/healthz` and `/readyz` are served
 * once, for any host. A config without `frontends:` is not routed here.
 */
export const frontends = fp(
  async function frontends(app: FastifyInstance, opts: FrontendsOptions) {
    const { config, now } = opts
    const { providers, stores } = app.gatehouse
    app.addConstraintStrategy(frontendConstraint(config))
    await app.register(async function health(scope) {
      await healthRoutes(scope, { providers, store: stores.sessions, refusals: app.observers.refusals })
    })
    for (const frontend of config.frontends) {
      const view = frontendView(config, frontend)
      const sessions = app.gatehouse.sessionsOf(frontend.name)
      // The sign-in routes and the proxy judge a session by the same
      // providers: one of a provider a reload took off this frontend's list
      // is a removed provider's to both (not refreshable, ended when due,
      // logged out here only), never live to one and over to the other.
      const signsInWith = providersOf(providers, frontend)
      await app.register(async function frontendScope(scope) {
        // Every route of this scope, the proxy's included, serves only this frontend's requests.
        scope.addHook('onRoute', (route) => {
          route.constraints = { ...route.constraints, [FRONTEND_CONSTRAINT]: frontend.name }
          // Fastify shows a request its route's config, not its constraints.
          route.config = { ...route.config, frontend: frontend.name }
        })
        const signIn = `${frontend.auth.basePath}/login`
        frontendErrorAnswers(scope, { signIn, home: frontend.home })
        await scope.register(cookiesPlugin, { config: view, frontend: frontend.name, now })
        await scope.register(ownRoutes, {
          config: view,
          providers: signsInWith,
          sessions,
          now,
          health: false,
          frontend: {
            name: frontend.name,
            uris: {
              authBase: `${frontend.publicUrl}${frontend.auth.basePath}`,
              postLogoutRedirectUri: `${frontend.publicUrl}${frontend.home}`,
            },
            home: frontend.home,
            owns: ownsPath(config, frontend),
          },
        })
        await scope.register(proxy, {
          config: view,
          now,
          sessions,
          providers: signsInWith,
          userTokens: app.gatehouse.userTokensOf(frontend.identityProviders),
          neighbours: neighbourPrefixes(config.frontends, frontend),
          websocketRecheck: opts.websocketRecheck,
        })
      })
    }
  },
  {
    name: 'gatehouse-frontends',
    fastify: '5.x',
    dependencies: ['gatehouse-observability', 'gatehouse-services', 'gatehouse-draining'],
  },
)

/**
 * The `pathPrefix`es of the other frontends a request for `frontend`'s host
 * could be for. A frontend is chosen on the path as sent, so `/SHOP/x` or
 * `/sh%6fp/x` is not the `/shop` frontend's, and lands on a catch-all
 * frontend's route, whose upstream may read it as `/shop/x`: the proxy
 * refuses such spellings as it does a deeper route's (proxy/path-check.ts).
 */
export function neighbourPrefixes(
  all: readonly FrontendConfig[],
  frontend: FrontendConfig,
): readonly string[] {
  return all
    .filter(
      (other) =>
        other !== frontend &&
        other.pathPrefix !== '' &&
        (other.host === undefined || frontend.host === undefined || other.host === frontend.host),
    )
    .map((other) => other.pathPrefix)
}
