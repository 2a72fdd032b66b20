import * as oauth from 'oauth4webapi'
import type { DpopKey, TokenAudience, TokenSet } from '../types.js'
import { retryOnDpopNonce } from './dpop.js'
import type { IdpCalls } from './idp-calls.js'
import { refuseIssuedAhead } from './issued-at.js'
import { LateAnswers } from './late-answer.js'
import { refuseAnotherUser } from './refreshed-id-token.js'
import { type Rotated, rotatedIn, UNKEPT, withRotated } from './rotated.js'
import { refuseOversized, SESSION_TOKENS } from './token-size.js'
import { refuseUnsendable } from './unsendable-token.js'

/**
 * Late refresh answers awaited in this process (late-answer.ts):
 * process-wide, so the bound holds across the clients a reload makes;
 * counted per issuer.
 */
const processLateAnswers = new LateAnswers()

/**
 * Redeems `current`'s refresh token (client.ts `refresh`, which says what
 * the audience and the key do).
 */
export async function refreshGrant(
  calls: IdpCalls,
  current: TokenSet,
  audience?: TokenAudience,
  dpopKey?: DpopKey,
): Promise<TokenSet> {
  const key = audience === undefined || audience.dpop ? dpopKey : undefined
  const operation = audience
    ? key === undefined && dpopKey !== undefined
      ? 'unbound_route_refresh'
      : 'route_refresh'
    : 'refresh'
  const as = calls.metadata(operation)
  let sentAt = calls.now()
  let rotated: Rotated | undefined
  const params = new URLSearchParams()
  if (audience?.resource !== undefined) params.set('resource', audience.resource)
  if (audience && audience.scopes.length > 0) params.set('scope', audience.scopes.join(' '))
  const redeem = (signal: AbortSignal) => {
    // One budget for the call, the nonce's retry included.
    const http = calls.http.patient(signal)
    return retryOnDpopNonce(key, async () => {
      sentAt = calls.now()
      const response = await oauth.refreshTokenGrantRequest(
        as,
        calls.client(),
        await calls.auth,
        current.refreshToken!,
        { ...(await calls.options(key, http)), additionalParameters: params },
      )
      // A 200 has rotated the refresh token: should the rest of it fail
      // validation, the session must still keep the new one (rotated.ts).
      const copy = response.status === 200 ? response.clone() : undefined
      try {
        const answer = await oauth.processRefreshTokenResponse(as, calls.client(), response, calls.bound(key))
        refuseOversized(answer, SESSION_TOKENS, calls.maxTokenSize)
        refuseUnsendable(answer)
        refuseIssuedAhead(answer, calls.now())
        refuseAnotherUser(answer, current.idToken)
        return answer
      } catch (err) {
        rotated = await rotatedIn(copy, calls.maxTokenSize, calls.now)
        throw err
      }
    })
  }
  const tokens = (result: oauth.TokenEndpointResponse): TokenSet => {
    const next = calls.tokens.tokenSet(result, sentAt, operation)
    return {
      ...next,
      refreshToken: next.refreshToken ?? current.refreshToken,
      // A kept refresh token (RFC 6749 §6: the IdP may leave the old one
      // in use) keeps its expiry unless the answer gives it a new one: an
      // IdP that slides it says so in `refresh_expires_in` (Keycloak's
      // SSO idle), and the old expiry would read a live session as dead
      // to grant weighing. A rotated one has the answer's, or none.
      refreshTokenExpiresAt:
        next.refreshToken === undefined
          ? (calls.tokens.refreshExpiresAt(result) ?? current.refreshTokenExpiresAt)
          : next.refreshTokenExpiresAt,
      idToken: next.idToken ?? current.idToken,
    }
  }
  try {
    // The IdP rotates the refresh token whether or not its answer comes
    // in time: past `oidc.timeout` the caller is told, and the answer is
    // still awaited for the session's lock holder to store (late-answer.ts).
    const result = await processLateAnswers.within(
      calls.oidc.timeout,
      calls.oidc.lateAnswerWait > 0,
      redeem,
      (outcome) => ('value' in outcome ? { tokens: tokens(outcome.value) } : { rotated }),
      calls.issuer,
    )
    calls.observer.accepted?.(operation)
    return tokens(result)
  } catch (err) {
    const echoed = rotated === UNKEPT ? undefined : rotated?.refreshToken
    throw withRotated(calls.failed(operation, err, current.refreshToken, echoed), rotated)
  }
}
