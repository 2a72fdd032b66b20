import { decodeJwt } from 'jose'
import type { ExchangeConfig } from '../config/types.js'
import { CLOCK_TOLERANCE_SECONDS } from '../oidc/issued-at.js'
import type { AudienceToken, TokenSet } from '../types.js'
import { tokenFingerprint } from './refresh-cooldown.js'
import { refreshMargin } from './refresh-margin.js'

/** The session's token a route exchanges, if the session has it. */
export function subjectToken(tokens: TokenSet, exchange: ExchangeConfig): string | undefined {
  return exchange.subjectToken === 'id_token' ? tokens.idToken : tokens.accessToken
}

/**
 * How long past an ID token's `exp` the gateway still presents it, ms: the
 * clock tolerance oauth4webapi validated it with when it arrived.
 */
export const ID_TOKEN_CLOCK_TOLERANCE = CLOCK_TOLERANCE_SECONDS * 1000

/** The subject token's life, as the exchange step weighs it. */
export interface SubjectLife {
  /** When it stops being accepted, epoch ms. */
  readonly expiresAt: number
  /** How long it was issued to live, ms, when known. */
  readonly lifetime: number | undefined
  /** How long past `expiresAt` it is still presented, ms: the IdP has the last word meanwhile. */
  readonly tolerance: number
}

/**
 * When the subject token stops being accepted, and how long it was issued
 * to live. An access token's expiry is on the gateway's own clock, counted
 * from the request that brought it. An ID token's is its own `exp` (OIDC
 * Core §2), read without verifying: the gateway verified it when the IdP
 * issued it, and the IdP verifies it again at the exchange. Entra ID's ID
 * tokens may expire before the access token that came with them.
 *
 * That `exp` is on the IdP's clock and is compared with the gateway's, so
 * the ID token counts as expired only `ID_TOKEN_CLOCK_TOLERANCE` after it:
 * the tolerance it was accepted with, so no ID token the gateway accepted
 * is refused as it arrives, whatever skew the acceptance allowed, and
 * within it the IdP, whose clock wrote `exp`, decides (its refusal costs
 * the route only). Not its lifetime (`exp - iat`) counted from when the
 * gateway received it, which skew could not touch: the session does not
 * record that moment. A refresh without an ID token keeps the old one
 * (OIDC Core §12.2), so the login token's request time would date an old ID
 * token as new, and the gateway would present ID tokens long expired.
 */
export function subjectLife(tokens: TokenSet, exchange: ExchangeConfig): SubjectLife {
  const accessToken = {
    expiresAt: tokens.accessTokenExpiresAt,
    lifetime: tokens.accessTokenLifetime,
    tolerance: 0,
  }
  if (exchange.subjectToken === 'access_token' || tokens.idToken === undefined) return accessToken
  try {
    const { exp, iat } = decodeJwt(tokens.idToken)
    if (typeof exp !== 'number') return accessToken
    return {
      expiresAt: exp * 1000,
      lifetime: typeof iat === 'number' && exp > iat ? (exp - iat) * 1000 : undefined,
      tolerance: ID_TOKEN_CLOCK_TOLERANCE,
    }
  } catch {
    return accessToken
  }
}

/** Whether the subject token is past its expiry and tolerance at `now`. */
export function subjectExpired(life: SubjectLife, now: number): boolean {
  return life.expiresAt + life.tolerance <= now
}

/**
 * Whether the exchange refreshes the login token first: when the subject
 * is due (`refreshBefore` before it expires, or halfway through its life),
 * the session has a refresh token, and the refresh may bring a subject
 * the session does not hold. It always renews an access token. An ID token
 * only if the IdP sends a new one, which OIDC Core §12.2 leaves to it and
 * nothing tells in advance: so one refresh is made once the ID token is
 * due. If the login token was obtained since then (a refresh from any
 * route, or a login whose ID token came due on arrival: a gateway clock
 * ahead) with this ID token, no other is made while it is still presented;
 * nor after, if that was past its expiry and tolerance: oauth4webapi, on
 * the gateway's clock, accepts no ID token that late, so the refresh
 * brought none and the IdP sends none. Each further refresh would only
 * rotate the refresh token.
 */
export function refreshesSubject(
  tokens: TokenSet,
  exchange: ExchangeConfig,
  now: number,
  refreshBefore: number,
): boolean {
  if (!tokens.refreshToken) return false
  const life = subjectLife(tokens, exchange)
  const dueAt = life.expiresAt - refreshMargin(refreshBefore, life.lifetime)
  if (now < dueAt) return false
  if (exchange.subjectToken === 'access_token') return true
  const refreshedAt = loginTokenObtainedAt(tokens)
  if (refreshedAt === undefined || refreshedAt < dueAt) return true
  const expired = life.expiresAt + life.tolerance
  return now >= expired && refreshedAt < expired
}

/**
 * When the session's login token was obtained, epoch ms by the gateway's
 * clock: when the request that brought it was sent (its expiry less its
 * lifetime). Unknown for tokens stored before the lifetime was recorded.
 */
function loginTokenObtainedAt(tokens: TokenSet): number | undefined {
  return tokens.accessTokenLifetime === undefined
    ? undefined
    : tokens.accessTokenExpiresAt - tokens.accessTokenLifetime
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
