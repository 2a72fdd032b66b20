import { decodeJwt } from 'jose'
import type * as oauth from 'oauth4webapi'

/**
 * Seconds a token is taken to live when the IdP says nothing (no
 * `expires_in`, RFC 6749 §5.1, and not a JWT): short, so it is refreshed
 * soon rather than forwarded long after it died.
 */
export const ASSUMED_LIFETIME = 60

/**
 * The longest a token is taken to live, in seconds: a year, whatever the
 * IdP says. `expires_in` is the IdP's to fill, and an absurd one (`1e20`)
 * made an expiry no store takes: Redis refuses a `PX` past a signed 64-bit
 * count of ms, so a client token's shared copy was never written, and every
 * request fetched another token and answered 503. A token still valid after
 * a year is fetched again then.
 */
export const MAX_LIFETIME = 365 * 24 * 3600 // 1 year, s

/**
 * When to stop forwarding a token. Counted from when its request was sent,
 * not when the answer came, or the IdP's latency would lengthen the token's
 * life past its `exp`; less one second, because `exp` is a whole second
 * (RFC 7519 §2 NumericDate) the IdP may have rounded down. `assumed` hears
 * of a response that gave no lifetime at all. At most MAX_LIFETIME.
 */
export function expiresAt(result: oauth.TokenEndpointResponse, sentAt: number, assumed: () => void): number {
  let lifetime = result.expires_in ?? jwtLifetime(result.access_token)
  if (lifetime === undefined) {
    assumed()
    lifetime = ASSUMED_LIFETIME
  }
  return sentAt + Math.max(0, Math.min(lifetime, MAX_LIFETIME) * 1000 - 1000)
}

/**
 * How long the IdP says a refresh token lives, in seconds: Keycloak's
 * `refresh_expires_in`, Entra ID's `refresh_token_expires_in` (neither is
 * RFC 6749's, so oauth4webapi checks neither). Only a positive finite
 * number: Keycloak's 0 for an offline token means no expiry, and anything
 * else is no lifetime at all. An expiry read too early is the harmful way
 * round (a logout elsewhere would revoke a grant still in use), so none is
 * guessed. The token itself is opaque to the client (RFC 6749 §1.5), so a
 * JWT's `exp` inside it is not read: it need not be what the server enforces.
 * At most MAX_LIFETIME, as `expires_in`: `1e308` made an expiry of Infinity,
 * which a session sealed as JSON keeps as `null` and reads back as expired,
 * so the Redis store ended the session at its first request.
 */
export function refreshLifetime(answer: { readonly [field: string]: unknown }): number | undefined {
  const seconds = answer.refresh_expires_in ?? answer.refresh_token_expires_in
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0
    ? Math.min(seconds, MAX_LIFETIME)
    : undefined
}

/**
 * A JWT access token's lifetime as its issuer wrote it (`exp - iat`), for
 * an IdP that sends no `expires_in`; both from the IdP's clock, so no skew.
 */
function jwtLifetime(token: string): number | undefined {
  try {
    const { exp, iat } = decodeJwt(token)
    return typeof exp === 'number' && typeof iat === 'number' && exp > iat ? exp - iat : undefined
  } catch {
    return undefined
  }
}

/**
 * Why a token the IdP issued cannot be used: it had no life left when its
 * answer came (`expires_in` 0 or 1, or under the second `expiresAt` takes
 * off). `what` names the token.
 */
export function expiredOnArrival(what: string): string {
  return `The identity provider's new ${what} expired before it could be used: it was issued to live no longer than its answer took (expires_in). Retry later; if it lasts, lengthen the token's lifetime at the identity provider.`
}
