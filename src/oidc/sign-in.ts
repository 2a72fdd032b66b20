import * as oauth from 'oauth4webapi'
import { generateDpopKey, publicKeyId } from '../dpop/keys.js'
import { type GatehouseError, gatehouseError } from '../errors.js'
import type { DpopKey, LoginResult, LoginState } from '../types.js'
import { claimsRefusal, sessionClaims, subRefusal } from './claims.js'
import { retryOnDpopNonce } from './dpop.js'
import type { IdpCalls } from './idp-calls.js'
import { refuseIssuedAhead } from './issued-at.js'
import { askedResources } from './login-resources.js'
import { type GrantHolder, strandedIn } from './rotated.js'
import { refuseOversized, SESSION_TOKENS } from './token-size.js'
import { refuseUnsendable } from './unsendable-token.js'

/** Gives back the refresh token of a grant no session will hold (the callback's `abandon`). */
export type Abandon = (refreshToken: string, holder: GrantHolder) => Promise<void>

/**
 * The callback of a sign-in: validates the authorization response (state,
 * and `iss` per RFC 9207 when the IdP advertises it), redeems the code with
 * the PKCE verifier at `redirectUri` and validates the ID token, nonce
 * included, then reads userinfo (client.ts `callback`).
 */
export async function signIn(
  calls: IdpCalls,
  currentUrl: URL,
  login: LoginState,
  redirectUri: string,
  abandon?: Abandon,
): Promise<LoginResult> {
  // The key the code was bound to at the login's start (RFC 9449 §10),
  // even if a reload has turned `dpop` off since: the IdP refuses that
  // code without a proof of it. A login that started without one gets a
  // new key, unbound, if `dpop` is on now.
  const dpopKey =
    login.dpopKey ??
    (calls.oidc.dpop ? await generateDpopKey(calls.oidc.dpopAlgorithm, 'sign-in') : undefined)
  try {
    return await redeem(calls, currentUrl, login, dpopKey, redirectUri, abandon)
  } catch (err) {
    // No session will hold the key: anyone may start a sign-in and come
    // back with a code of their making, and a handle kept ready for each
    // took a place among the signed-in sessions' (MAX_KEYS).
    if (dpopKey) calls.dpop.forget(publicKeyId(dpopKey))
    throw err
  }
}

async function redeem(
  calls: IdpCalls,
  currentUrl: URL,
  login: LoginState,
  dpopKey: DpopKey | undefined,
  redirectUri: string,
  abandon: Abandon | undefined,
): Promise<LoginResult> {
  const as = calls.metadata('code_exchange')
  let result: oauth.TokenEndpointResponse
  let sentAt = calls.now()
  let stranded: Awaited<ReturnType<typeof strandedIn>>
  try {
    const params = oauth.validateAuthResponse(as, calls.client(), currentUrl, login.state)
    result = await retryOnDpopNonce(dpopKey, async () => {
      sentAt = calls.now()
      const response = await oauth.authorizationCodeGrantRequest(
        as,
        calls.client(),
        await calls.auth,
        params,
        // RFC 6749 §4.1.3: the same redirect_uri as the authorization request's.
        redirectUri,
        login.codeVerifier,
        await calls.options(dpopKey),
      )
      // A 200 whose ID token is then refused (nonce, max_age, aud…) has
      // made a grant all the same, whose refresh token is read from the
      // answer as it came (rotated.ts), to be given back.
      const copy = abandon && response.status === 200 ? response.clone() : undefined
      try {
        const answer = await oauth.processAuthorizationCodeResponse(as, calls.client(), response, {
          expectedNonce: login.nonce,
          requireIdToken: true,
          // Asked for with max_age, the authentication must be that recent, and say so.
          ...(login.maxAge === undefined ? {} : { maxAge: login.maxAge }),
          ...calls.bound(dpopKey),
        })
        // Before userinfo: a token too large to keep is not sent on either.
        refuseOversized(answer, SESSION_TOKENS, calls.maxTokenSize)
        refuseUnsendable(answer)
        refuseIssuedAhead(answer, calls.now())
        return answer
      } catch (err) {
        stranded = await strandedIn(copy)
        throw err
      }
    })
    calls.observer.accepted?.('code_exchange')
  } catch (err) {
    if (abandon && stranded !== undefined) await abandon(stranded.refreshToken, stranded.holder)
    // An IdP may echo what it refused: the code and the verifier are as secret as a token.
    throw calls.failed(
      'code_exchange',
      err,
      currentUrl.searchParams.get('code') ?? undefined,
      login.codeVerifier,
    )
  }
  const idClaims = oauth.getValidatedIdTokenClaims(result)!
  let claims: Record<string, unknown>
  try {
    const badSub = subRefusal(idClaims.sub)
    if (badSub) throw refusedAnswer(badSub)
    const userinfo =
      (calls.oidc.userinfo ?? true) && as.userinfo_endpoint
        ? await userinfoOf(calls, as, result.access_token, idClaims.sub, dpopKey)
        : undefined
    claims = sessionClaims(idClaims, userinfo, calls.allowClaims)
    const badClaims = claimsRefusal(claims)
    if (badClaims) throw refusedAnswer(badClaims)
  } catch (err) {
    // The code is redeemed and a grant made: a refused sign-in leaves no
    // refresh token alive at the IdP that no session will ever hold.
    if (abandon && typeof result.refresh_token === 'string')
      await abandon(result.refresh_token, {
        sub: idClaims.sub,
        sid: typeof idClaims.sid === 'string' ? idClaims.sid : undefined,
      })
    throw err
  }
  return {
    idp: calls.oidc.name,
    registration: calls.registration(),
    tokens: calls.tokens.tokenSet(result, sentAt, 'code_exchange'),
    ...(dpopKey ? { dpopKey } : {}),
    sub: idClaims.sub,
    sid: typeof idClaims.sid === 'string' ? idClaims.sid : undefined,
    claims,
    resources: askedResources(login.resources, calls.resources),
    ...(login.startedAt === undefined ? {} : { startedAt: login.startedAt }),
    // oauth4webapi checked that an auth_time is a number.
    ...(typeof idClaims.auth_time === 'number' ? { authTime: idClaims.auth_time } : {}),
  }
}

/**
 * OIDC Core §5.3.2: the userinfo `sub` must equal the ID token's, or the
 * login fails. Classified apart from the code exchange: a 401 here is
 * about the access token, not the client's credentials.
 */
async function userinfoOf(
  calls: IdpCalls,
  as: oauth.AuthorizationServer,
  accessToken: string,
  sub: string,
  dpopKey?: DpopKey,
) {
  try {
    // A DPoP-bound access token needs its proof at userinfo too (RFC 9449 §7).
    const claims = await retryOnDpopNonce(dpopKey, async () => {
      const response = await oauth.userInfoRequest(
        as,
        calls.client(),
        accessToken,
        await calls.options(dpopKey),
      )
      return oauth.processUserInfoResponse(as, calls.client(), sub, response)
    })
    // At an mTLS alias the certificate was taken (answers.ts `client_certificate_refused`).
    calls.observer.accepted?.('userinfo')
    return claims
  } catch (err) {
    throw calls.failed('userinfo', err, accessToken)
  }
}

/** A login whose answers passed oauth4webapi's checks but cannot make a session. */
function refusedAnswer(reason: string): GatehouseError {
  return gatehouseError('GATEHOUSE_ERR_LOGIN_FAILED', `The login response failed validation: ${reason}.`)
}
