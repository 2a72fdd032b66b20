import { decodeJwt } from 'jose'
import type { ExchangeConfig } from '../config/types.js'
import type { AudienceToken, TokenSet } from '../types.js'
import { tokenFingerprint } from './refresh-cooldown.js'

/** The session's token a route exchanges, if the session has it. */
export function subjectToken(tokens: TokenSet, exchange: ExchangeConfig): string | undefined {
  return exchange.subjectToken === 'id_token' ? tokens.idToken : tokens.accessToken
}

/**
 * When the subject token stops being accepted, epoch ms. An ID token's own
 * `exp` (OIDC Core §2), read without verifying: the gateway verified it
 * when the IdP issued it, and the IdP verifies it again at the exchange.
 * Entra ID's ID tokens may expire before the access token that came with them.
 */
export function subjectExpiresAt(tokens: TokenSet, exchange: ExchangeConfig): number {
  if (exchange.subjectToken === 'access_token' || tokens.idToken === undefined)
    return tokens.accessTokenExpiresAt
  try {
    const { exp } = decodeJwt(tokens.idToken)
    return typeof exp === 'number' ? exp * 1000 : tokens.accessTokenExpiresAt
  } catch {
    return tokens.accessTokenExpiresAt
  }
}

/**
 * True when `token` was exchanged from the session's current subject token.
 * A refresh that replaces the subject (the login's access token, or the ID
 * token a refresh returns) makes every token exchanged from it stale: the
 * check reads one consistent record, so no ordering of writes can pair a
 * new subject with an old exchanged token.
 */
export function exchangedFromCurrent(
  tokens: TokenSet,
  exchange: ExchangeConfig,
  token: AudienceToken,
): boolean {
  const subject = subjectToken(tokens, exchange)
  return subject !== undefined && token.subject === tokenFingerprint(subject)
}
