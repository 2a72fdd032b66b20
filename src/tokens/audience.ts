import type { RouteConfig } from '../config/types.js'
import type { TokenAudience } from '../types.js'

/**
 * The audience of a `user`, `optional-user` or `exchange` route, or
 * `undefined` for the login token.
 */
export function audienceOf(route: RouteConfig): TokenAudience | undefined {
  if (route.token === 'exchange' && route.exchange) {
    const x = route.exchange
    const scope = x.scopes.join(' ')
    return {
      // Equal asks share a token; nothing a refresh-minted token's key can equal.
      key: `exchange ${x.grant} ${x.subjectToken} ${x.audience ?? ''} ${x.resource ?? ''} ${scope} ${x.requestedTokenType ?? ''}${route.dpop ? ' dpop' : ''}`,
      resource: x.resource,
      scopes: x.scopes,
      label: x.audience ?? x.resource ?? `scope:${scope}`,
      dpop: route.dpop,
      exchange: x,
    }
  }
  if (route.token !== 'user' && route.token !== 'optional-user') return undefined
  const scopes = [...new Set(route.scopes)].sort()
  if (route.resource === undefined && scopes.length === 0) return undefined
  const scope = scopes.join(' ')
  return {
    // A DPoP-bound token and a bearer one for the same resource are two tokens.
    key: `${route.resource ?? ''} ${scope}${route.dpop ? ' dpop' : ''}`,
    resource: route.resource,
    scopes,
    label: route.resource ?? `scope:${scope}`,
    dpop: route.dpop,
  }
}
