import type { FrontendConfig, RouteConfig } from './types.js'

/**
 * The routes a session of provider `idp` may call: those of each frontend
 * that signs in with it (`frontends[].identityProviders`; every provider
 * when it lists none), but the ones restricted to other providers
 * (`routes[].identityProviders`). A session is its frontend's, so a route
 * of a frontend that does not list `idp` never serves one, and its
 * `resource` is not the provider's to be asked for.
 */
export function routesOfProvider(
  frontends: readonly Pick<FrontendConfig, 'identityProviders' | 'routes'>[],
  idp: string,
): RouteConfig[] {
  return frontends
    .filter((frontend) => frontend.identityProviders?.includes(idp) ?? true)
    .flatMap((frontend) => frontend.routes)
    .filter((route) => route.identityProviders?.includes(idp) ?? true)
}
