import type { ClientRegistration } from '../types.js'
import type { UserLoggedOut } from './types.js'

/**
 * The name under which a back-channel logout notes the IdP session (`sid`)
 * or user (`sub`) it ended, for the sign-ins of it still completing. The
 * issuer and client id belong to it: a `sid` or `sub` is unique only within
 * its issuer, and two clients of one issuer are two sets of sessions.
 */
export function loggedOutName(registration: ClientRegistration, sidOrSub: string): string {
  return JSON.stringify([registration.issuer, registration.clientId, sidOrSub])
}

/**
 * Two notes of one user's logouts as one, for a store that finds both (a
 * note written again, or one under each of `session.secrets`): the latest
 * `at`, and the latest `iat` while both have one. A note without `iat` (a
 * release before it wrote it) may stand for a logout issued after the
 * other's `iat`, so the merged note goes by `at` alone.
 */
export function latestLogout(a: UserLoggedOut, b: UserLoggedOut): UserLoggedOut {
  const at = Math.max(a.at, b.at)
  return a.iat === undefined || b.iat === undefined ? { at } : { at, iat: Math.max(a.iat, b.iat) }
}
