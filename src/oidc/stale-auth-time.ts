/**
 * What oauth4webapi's refusal of an ID token's `auth_time` under `max_age`
 * means, in words an operator can act on. It says only "too much time has
 * elapsed since the last End-User authentication"; Glewlwyd 2.7 writes
 * `auth_time: 0` in every ID token of its token endpoint (it reads the
 * time from the browser's session cookie, which a code exchange does not
 * carry), so with a `max_age` every sign-in failed so, with nothing to say
 * that no sign-in ever could.
 */
import * as oauth from 'oauth4webapi'

/** oauth4webapi's message for the refusal (its validateIdTokenAuthTime). */
const STALE_AUTH_TIME = 'too much time has elapsed since the last End-User authentication'

/**
 * The reason for an ID token refused for its `auth_time`, naming it and
 * how old it was; `undefined` for any other error.
 */
export function staleAuthTime(err: unknown): string | undefined {
  if (!(err instanceof oauth.OperationProcessingError) || err.message !== STALE_AUTH_TIME) return undefined
  const { claims, now } = (err.cause ?? {}) as { claims?: { auth_time?: unknown }; now?: unknown }
  const authTime = claims?.auth_time
  // oauth4webapi checked it is a non-negative number before comparing it.
  if (typeof authTime !== 'number' || !Number.isFinite(authTime) || typeof now !== 'number')
    return STALE_AUTH_TIME
  if (authTime === 0)
    return `${STALE_AUTH_TIME}: the ID token's auth_time is 0 (1970-01-01), which says the identity provider does not record when the user authenticated (Glewlwyd 2.7 writes 0 in every ID token from its token endpoint), so no sign-in can meet a max_age (OIDC Core §3.1.2.1); remove max_age from oidc.authorizationParams and auth.loginParams`
  const at = new Date(authTime * 1000).toISOString().replace(/\.000Z$/, 'Z')
  return `${STALE_AUTH_TIME}: the ID token's auth_time is ${at}, ${Math.round(now - authTime)} s before it was checked, longer ago than the max_age asked for allows`
}
