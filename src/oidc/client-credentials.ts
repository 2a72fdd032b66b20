import * as oauth from 'oauth4webapi'
import { generateDpopKey } from '../dpop/keys.js'
import type { CachedToken } from '../types.js'
import { retryOnDpopNonce } from './dpop.js'
import type { IdpCalls } from './idp-calls.js'
import { ACCESS_TOKEN_ONLY, refuseOversized } from './token-size.js'
import { refuseUnsendable } from './unsendable-token.js'

/** A client-credentials token for `scopes` (client.ts `clientCredentials`, which says what `dpop` does). */
export async function clientCredentialsToken(
  calls: IdpCalls,
  scopes: readonly string[],
  dpop: boolean,
): Promise<CachedToken> {
  const as = calls.metadata('client_credentials')
  let sentAt = calls.now()
  const dpopKey =
    calls.oidc.dpop && dpop ? await generateDpopKey(calls.oidc.dpopAlgorithm, 'client') : undefined
  try {
    const params: Record<string, string> = scopes.length > 0 ? { scope: scopes.join(' ') } : {}
    const result = await retryOnDpopNonce(dpopKey, async () => {
      sentAt = calls.now()
      const response = await oauth.clientCredentialsGrantRequest(
        as,
        calls.client(),
        await calls.auth,
        params,
        await calls.options(dpopKey),
      )
      return oauth.processClientCredentialsResponse(as, calls.client(), response, calls.bound(dpopKey))
    })
    refuseOversized(result, ACCESS_TOKEN_ONLY, calls.maxTokenSize)
    refuseUnsendable(result)
    calls.observer.accepted?.('client_credentials')
    const expires = calls.tokens.expiresAt(result, sentAt, 'client_credentials')
    return {
      accessToken: result.access_token,
      expiresAt: expires,
      lifetime: expires - sentAt,
      ...(dpopKey ? { dpopKey } : {}),
    }
  } catch (err) {
    throw calls.failed('client_credentials', err)
  }
}
