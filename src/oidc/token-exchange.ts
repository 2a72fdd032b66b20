import * as oauth from 'oauth4webapi'
import type { AudienceToken, DpopKey, TokenAudience } from '../types.js'
import { retryOnDpopNonce } from './dpop.js'
import { EXCHANGE_TOKEN_TYPES, exchangeAnswerRefusal, exchangeParameters } from './exchange.js'
import type { IdpCalls } from './idp-calls.js'
import { ACCESS_TOKEN_ONLY, refuseOversized } from './token-size.js'
import { refuseUnsendable } from './unsendable-token.js'

/**
 * Exchanges `subjectToken` for the token of `audience`, a `token: exchange`
 * route (client.ts `exchange`; the grant's parameters and the answer's
 * checks are exchange.ts's).
 */
export async function exchangeToken(
  calls: IdpCalls,
  subjectToken: string,
  audience: TokenAudience,
  dpopKey?: DpopKey,
): Promise<AudienceToken> {
  const as = calls.metadata('token_exchange')
  let sentAt = calls.now()
  const { grantType, parameters } = exchangeParameters(audience.exchange!, subjectToken)
  const key = audience.dpop ? dpopKey : undefined
  try {
    const result = await retryOnDpopNonce(key, async () => {
      sentAt = calls.now()
      const response = await oauth.genericTokenEndpointRequest(
        as,
        calls.client(),
        await calls.auth,
        grantType,
        parameters,
        await calls.options(key),
      )
      // Every type is read; which the route may forward is judged below, in one place.
      return oauth.processGenericTokenEndpointResponse(as, calls.client(), response, {
        recognizedTokenTypes: EXCHANGE_TOKEN_TYPES,
      })
    })
    // RFC 8693 §2.2.1: a refresh_token the answer may carry is not read,
    // so never kept nor logged; only the access token is taken.
    const wrongType = exchangeAnswerRefusal(audience.exchange!, result, key !== undefined, subjectToken)
    if (wrongType !== undefined) throw wrongType
    refuseOversized(result, ACCESS_TOKEN_ONLY, calls.maxTokenSize)
    refuseUnsendable(result)
    calls.observer.accepted?.('token_exchange')
    const expires = calls.tokens.expiresAt(result, sentAt, 'token_exchange')
    return {
      accessToken: result.access_token,
      accessTokenExpiresAt: expires,
      accessTokenLifetime: expires - sentAt,
      ...calls.tokens.certificateOf(),
    }
  } catch (err) {
    throw calls.failed('token_exchange', err, subjectToken)
  }
}
