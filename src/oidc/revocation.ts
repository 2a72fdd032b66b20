import * as oauth from 'oauth4webapi'
import type { IdpCalls } from './idp-calls.js'

/**
 * Revokes a refresh token (RFC 7009; client.ts `revoke`). False, and
 * nothing done, when the IdP has no revocation endpoint. `stop` cuts the
 * call short of its timeout.
 */
export async function revokeRefreshToken(
  calls: IdpCalls,
  refreshToken: string,
  stop?: AbortSignal,
): Promise<boolean> {
  const as = calls.metadata('revocation')
  if (!as.revocation_endpoint) return false
  try {
    const auth = await calls.auth
    const options = calls.http.options()
    const response = await oauth.revocationRequest(as, calls.client(), auth, refreshToken, {
      ...options,
      // A shutdown's last pass out of time (owed-revocations.ts) cuts the call short of its timeout.
      ...(stop && { signal: AbortSignal.any([options.signal, stop]) }),
      additionalParameters: { token_type_hint: 'refresh_token' },
    })
    await oauth.processRevocationResponse(response)
    calls.observer.accepted?.('revocation')
    return true
  } catch (err) {
    throw calls.failed('revocation', err, refreshToken)
  }
}
