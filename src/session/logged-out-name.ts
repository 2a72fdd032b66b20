import type { ClientRegistration } from '../types.js'

/**
 * The name under which a back-channel logout notes the IdP session (`sid`)
 * or user (`sub`) it ended, for the sign-ins of it still completing. The
 * issuer and client id belong to it: a `sid` or `sub` is unique only within
 * its issuer, and two clients of one issuer are two sets of sessions.
 */
export function loggedOutName(registration: ClientRegistration, sidOrSub: string): string {
  return JSON.stringify([registration.issuer, registration.clientId, sidOrSub])
}
