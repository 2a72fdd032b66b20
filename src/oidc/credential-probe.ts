import { randomBytes } from 'node:crypto'
import * as oauth from 'oauth4webapi'
import type { GatehouseError } from '../errors.js'
import { type IdpFailure, idpFailureOf } from './translate.js'

/** What one probe of the client's credentials found. */
export interface CredentialProbe {
  /**
   * `accepted`: the IdP authenticated the client; `refused`: it did not;
   * `inconclusive`: it could not be asked (down, or an answer that says neither).
   */
  readonly verdict: 'accepted' | 'refused' | 'inconclusive'
  /** What the IdP answered, in words. */
  readonly answer: string
  readonly failure?: IdpFailure
}

type Options = Parameters<typeof oauth.refreshTokenGrantRequest>[4]

/**
 * Asks the token endpoint for something it must refuse, authenticated
 * as the gateway: a refresh-token grant (RFC 6749 §6) for a random token
 * nobody was ever issued. An IdP authenticates a confidential client
 * before it looks at the grant (§3.2.1), so `invalid_grant`, or any
 * other refusal of the grant, says the credentials work, and
 * `invalid_client` or a 401 says they do not. Nothing real is redeemed,
 * consumed or revoked.
 */
export async function probeCredentials(
  as: oauth.AuthorizationServer,
  client: oauth.Client,
  auth: oauth.ClientAuth,
  options: Options,
  translate: (err: unknown) => GatehouseError,
): Promise<CredentialProbe> {
  try {
    const response = await oauth.refreshTokenGrantRequest(
      as,
      client,
      auth,
      randomBytes(32).toString('base64url'),
      options,
    )
    await oauth.processRefreshTokenResponse(as, client, response)
    return { verdict: 'accepted', answer: 'tokens for a random refresh token (the IdP does not check them!)' }
  } catch (err) {
    const failure = idpFailureOf(translate(err))
    if (!failure) return { verdict: 'inconclusive', answer: (err as Error).message }
    const answer = failure.reason
    if (failure.answer === 'unauthorized_client') {
      return {
        verdict: 'accepted',
        answer: `${answer} (authenticated, but the refresh_token grant is not allowed)`,
        failure,
      }
    }
    if (failure.verdict === 'client_refused') return { verdict: 'refused', answer, failure }
    if (failure.verdict === 'unavailable') return { verdict: 'inconclusive', answer, failure }
    return { verdict: 'accepted', answer, failure }
  }
}
