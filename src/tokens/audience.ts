import type { RouteConfig } from '../config/types.js'
import type { TokenAudience, TokenSet } from '../types.js'

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

/**
 * Whether the session's refresh token may be redeemed for `audience`:
 * RFC 8707 §2.2, a refresh may ask only for resources the grant covers,
 * the ones its authorization request named. An exchange, and a token of
 * scopes alone, ask for none of the grant's.
 *
 * A session that does not know what its login named (one from before
 * sessions recorded it) is taken to hold only the resources it has been
 * issued a token for. Asking the IdP for another could spend the refresh
 * token on a refusal: oidc-provider rotates it before it checks the
 * resource and answers `invalid_target` without the new one, and the next
 * redemption, a replay, revokes the grant and ends the session on every
 * route. Refused here, the session loses that one route until it signs in
 * again, and is told so.
 */
export function withinGrant(
  session: { readonly resources?: readonly string[] | undefined; readonly tokens: TokenSet },
  audience: TokenAudience,
): boolean {
  const { resource } = audience
  if (audience.exchange !== undefined || resource === undefined) return true
  if (session.resources !== undefined) return session.resources.includes(resource)
  // The keys `audienceOf` makes: the resource, a space, the scopes.
  return Object.keys(session.tokens.audiences ?? {}).some((key) => key.startsWith(`${resource} `))
}
