import type { RouteConfig } from '../config/types.js'

/**
 * What a route's token is for: an RFC 8707 resource, a down-scoped `scope`,
 * or both. Routes that name neither use the login's access token and have
 * no audience.
 */
export interface TokenAudience {
  /** Stable key of the token in the session record; equal for routes that ask for the same token. */
  readonly key: string
  readonly resource: string | undefined
  readonly scopes: readonly string[]
  /** Bounded label for metrics: the resource, or `scope:<scopes>` for a scope-only token. */
  readonly label: string
}

/** The audience of a `user` or `optional-user` route, or `undefined` for the login token. */
export function audienceOf(route: RouteConfig): TokenAudience | undefined {
  if (route.token !== 'user' && route.token !== 'optional-user') return undefined
  const scopes = [...new Set(route.scopes)].sort()
  if (route.resource === undefined && scopes.length === 0) return undefined
  const scope = scopes.join(' ')
  return {
    key: `${route.resource ?? ''} ${scope}`,
    resource: route.resource,
    scopes,
    label: route.resource ?? `scope:${scope}`,
  }
}

/** Every resource the routes declare, each once, for the authorization request (RFC 8707 §2). */
export function configuredResources(routes: readonly RouteConfig[]): string[] {
  const resources = new Set<string>()
  for (const route of routes) {
    if (route.resource !== undefined && (route.token === 'user' || route.token === 'optional-user'))
      resources.add(route.resource)
  }
  return [...resources]
}
