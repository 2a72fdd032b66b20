import { decodeJwt } from 'jose'
import type { ExchangeConfig } from '../config/types.js'
import type { AudienceToken, TokenSet } from '../types.js'
import { tokenFingerprint } from './refresh-cooldown.js'

/** The session's token a route exchanges, if the session has it. */
export function subjectToken(tokens: TokenSet, exchange: ExchangeConfig): string | undefined {
  return exchange.subjectToken === 'id_token' ? tokens.idToken : tokens.accessToken
}

/**
 * When the subject token stops being accepted, epoch ms, and how long it
 * was issued to live, ms, when known. An ID token's own `exp` and `iat`
 * (OIDC Core §2), read without verifying: the gateway verified it when the
 * IdP issued it, and the IdP verifies it again at the exchange. Entra ID's
 * ID tokens may expire before the access token that came with them.
 */
export function subjectLife(
  tokens: TokenSet,
  exchange: ExchangeConfig,
): { readonly expiresAt: number; readonly lifetime: number | undefined } {
  const accessToken = { expiresAt: tokens.accessTokenExpiresAt, lifetime: tokens.accessTokenLifetime }
  if (exchange.subjectToken === 'access_token' || tokens.idToken === undefined) return accessToken
  try {
    const { exp, iat } = decodeJwt(tokens.idToken)
    if (typeof exp !== 'number') return accessToken
    return {
      expiresAt: exp * 1000,
      lifetime: typeof iat === 'number' && exp > iat ? (exp - iat) * 1000 : undefined,
    }
  } catch {
    return accessToken
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
  return token.subject !== undefined && token.subject === subjectFingerprint(tokens, exchange)
}

/**
 * Fingerprints by token set: a set is never changed, only replaced, and a
 * cached session hands every request the same one, so each exchange
 * route's check hashes its subject once per set, not once per request.
 */
const fingerprints = new WeakMap<TokenSet, { access_token?: string; id_token?: string }>()

function subjectFingerprint(tokens: TokenSet, exchange: ExchangeConfig): string | undefined {
  let known = fingerprints.get(tokens)
  if (known === undefined) {
    known = {}
    fingerprints.set(tokens, known)
  }
  const kind = exchange.subjectToken
  if (known[kind] === undefined) {
    const subject = subjectToken(tokens, exchange)
    if (subject === undefined) return undefined
    known[kind] = tokenFingerprint(subject)
  }
  return known[kind]
}
