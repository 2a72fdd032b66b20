import type { RouteConfig } from '../config/types.js'
import type { DpopKey, TokenAudience, TokenSet } from '../types.js'

/**
 * `key` (whose last part is a space-joined scope list) for a token bound to
 * a DPoP key, or `key` itself for a bearer one. The mark cannot be read as
 * a scope: RFC 6749 §3.3's scope-token has no space or `"`. Until
 * 2026-12-06 it was ` dpop`, and a bearer token for scopes `[a, dpop]` and
 * a DPoP one for `[a]` were one token, sent to both routes.
 */
export function boundKey(key: string, dpop: boolean): string {
  return dpop ? `${key} "dpop"` : key
}

/**
 * The audience of a `user`, `optional-user` or `exchange` route, or
 * `undefined` for the login token; bound to the session's DPoP key when
 * `dpop` (default: the route's).
 */
export function audienceOf(route: RouteConfig, dpop = route.dpop): TokenAudience | undefined {
  if (route.token === 'exchange' && route.exchange) {
    const x = route.exchange
    const scope = x.scopes.join(' ')
    return {
      // Equal asks share a token; nothing a refresh-minted token's key can equal.
      key: boundKey(
        `exchange ${x.grant} ${x.subjectToken} ${x.audience ?? ''} ${x.resource ?? ''} ${scope} ${x.requestedTokenType ?? ''}`,
        dpop,
      ),
      resource: x.resource,
      scopes: x.scopes,
      label: x.audience ?? x.resource ?? `scope:${scope}`,
      dpop,
      exchange: x,
    }
  }
  if (route.token !== 'user' && route.token !== 'optional-user') return undefined
  const scopes = [...new Set(route.scopes)].sort()
  if (route.resource === undefined && scopes.length === 0) return undefined
  const scope = scopes.join(' ')
  return {
    // A DPoP-bound token and a bearer one for the same resource are two tokens.
    key: boundKey(`${route.resource ?? ''} ${scope}`, dpop),
    resource: route.resource,
    scopes,
    label: route.resource ?? `scope:${scope}`,
    dpop,
  }
}

/** A route's audience for one session (`sessionAudience`). */
export type SessionAudience = (session: {
  readonly dpopKey?: DpopKey | undefined
}) => TokenAudience | undefined

/**
 * A route's audience for each session. A session keeps the binding it
 * signed in with: one with a DPoP key gets a token bound to it where the
 * route binds, one without a bearer token, whatever `oidc.dpop` says now;
 * the two are kept apart, so neither's token changes when a reload turns
 * DPoP on or off.
 */
export function sessionAudience(route: RouteConfig): SessionAudience {
  const bearer = audienceOf(route, false)
  const bound = route.dpop ? audienceOf(route, true) : bearer
  return (session) => (session.dpopKey ? bound : bearer)
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
  // The keys `audienceOf` makes: the resource, a space, the scopes (and `boundKey`'s mark).
  return Object.keys(session.tokens.audiences ?? {}).some((key) => key.startsWith(`${resource} `))
}
