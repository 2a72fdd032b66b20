import { type ErrorCode, type GatehouseError, gatehouseError, isGatehouseError } from '../errors.js'
import { exchangeAnswerRefused } from '../oidc/exchange.js'
import { providerGone } from '../oidc/providers.js'
import { type IdpFailure, idpFailureOf } from '../oidc/translate.js'
import { sessionEnded } from '../session/log-id.js'
import type { SessionData } from '../session/types.js'
import type { AudienceToken, DpopKey, SessionIssuer, TokenAudience, TokenSet } from '../types.js'
import { type ExchangeOutcome, exchangeOutcome, refusedBeforeExchange } from './exchange-outcome.js'
import { refreshesSubject, subjectExpired, subjectLife, subjectToken } from './exchange-subject.js'
import { tokenFingerprint } from './refresh-cooldown.js'
import type { RefusalMemory } from './refusal-memory.js'

/** What the gateway hears of exchanges (part of `RefreshObserver`). */
export interface ExchangeObserver {
  /**
   * One exchange of a session's token for a `token: exchange` route's
   * (`audience`, the route audience's label) at provider `idp`, the
   * session's; `failure`, what the IdP answered when it was not a success;
   * `refused`, what of the IdP's answer the gateway refused (outcome
   * `wrong_token_type`), in a few words that never hold its token.
   */
  exchanged?(
    outcome: ExchangeOutcome,
    ms: number,
    audience: string,
    sessionId: string,
    failure: IdpFailure | undefined,
    idp: string,
    refused?: string,
  ): void
}

/**
 * Exchanges that would be answered alike if asked again at once
 * (REFUSAL_MEMORY): the IdP's refusal, and the gateway's refusal of a
 * token the route may not forward (`exchangeAnswerRefusal`).
 */
const refusedForGood: ReadonlySet<ErrorCode> = new Set([
  'GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED',
  'GATEHOUSE_ERR_TOKEN_EXCHANGE_WRONG_TOKEN_TYPE',
])

/** `OidcClient.exchange` at the session's provider (`IdentityProviders.exchange`). */
export type Exchange = (
  subjectToken: string,
  audience: TokenAudience,
  dpopKey?: DpopKey,
  session?: SessionIssuer,
) => Promise<AudienceToken>

/** What one exchange step needs of the `UserTokens` that runs it, under its flight and lock. */
export interface ExchangeStepDeps {
  /** The IdP client's exchange (`IdentityProviders.exchange`); absent without `token: exchange` routes. */
  readonly exchange: Exchange | undefined
  readonly now: () => number
  readonly refreshBefore: number
  readonly observer: ExchangeObserver | undefined
  /** The IdP's refusals of a session's exchanges, by session, audience and subject token. */
  readonly refusals: RefusalMemory
  /** Refreshes the login token (the subject) and stores it; the lock is already held. */
  refreshSubject(session: SessionData): Promise<SessionData>
  /** The versioned compare-and-set of the new tokens; the session as stored after it. */
  write(session: SessionData, tokens: TokenSet): Promise<SessionData>
}

/**
 * Exchanges the session's subject token for `audience`'s. The caller holds
 * the session's one flight and lock, as for every refresh, so the subject
 * is refreshed first when due and a refresh may renew it
 * (`refreshesSubject`), in the same hold: the exchange never spends a token
 * about to expire, and no other flight rotates the refresh token meanwhile.
 * The exchanged token is written by the same compare-and-set, with the
 * fingerprint of its subject (see `exchangedFromCurrent`).
 */
export async function exchangeStep(
  deps: ExchangeStepDeps,
  current: SessionData,
  audience: TokenAudience,
): Promise<SessionData> {
  const exchange = audience.exchange!
  let session = current
  // Without a refresh token the subject is used while it lasts.
  if (refreshesSubject(session.tokens, exchange, deps.now(), deps.refreshBefore))
    session = await deps.refreshSubject(session)
  const subject = subjectToken(session.tokens, exchange)
  if (subject === undefined)
    throw gatehouseError(
      'GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED',
      "The session has no ID token to exchange for this route's token; the login must ask for openid.",
    )
  if (subjectExpired(subjectLife(session.tokens, exchange), deps.now())) {
    if (exchange.subjectToken === 'access_token') {
      // Renewed just now, and dead on arrival: the IdP's tokens live no
      // longer than its answer takes (audience-rounds.ts says the same of a
      // plain route's). The refresh token is fresh; the session stays.
      if (session.tokens.refreshToken)
        throw gatehouseError(
          'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
          "The identity provider's new access token expired before it could be exchanged: it was issued to live no longer than its answer took (expires_in). Retry later; if it lasts, lengthen the token's lifetime at the identity provider.",
        )
      // The login token, with no refresh token to renew it: the session is over.
      throw sessionEnded(session.id, 'The token to exchange expired and there is no refresh token.')
    }
    deps.observer?.exchanged?.('subject_expired', 0, audience.label, session.id, undefined, session.idp)
    throw expiredIdToken(session)
  }
  // The IdP refused this subject for this audience moments ago, and would
  // again (REFUSAL_MEMORY); a new subject (a refresh) is asked for at once.
  const refusalKey = `${session.id}\n${audience.key}`
  const fingerprint = tokenFingerprint(subject)
  const kept = deps.refusals.kept(refusalKey, fingerprint)
  if (kept !== undefined) throw refusedBeforeExchange(kept, exchangeOutcome(kept.cause))
  const started = deps.now()
  let token: AudienceToken
  try {
    // At the session's own provider: its subject token means nothing to another.
    token = await deps.exchange!(subject, audience, session.dpopKey, session)
  } catch (err) {
    // The session's provider is gone (a reload removed it, or gave its name
    // another issuer or client id): no IdP was asked, so this is no
    // exchange to count, nor an outage; the session is over (UserTokens).
    if (providerGone(err)) throw err
    // The copy kept is counted as the refusal was, for a remembered answer's span.
    // An answer whose token the route may not forward is the same answer again.
    if (isGatehouseError(err) && refusedForGood.has(err.code))
      refusedBeforeExchange(deps.refusals.refused(refusalKey, err, fingerprint), exchangeOutcome(err))
    const ms = deps.now() - started
    deps.observer?.exchanged?.(
      exchangeOutcome(err),
      ms,
      audience.label,
      session.id,
      idpFailureOf(err),
      session.idp,
      exchangeAnswerRefused(err),
    )
    throw err
  }
  deps.observer?.exchanged?.(
    'success',
    deps.now() - started,
    audience.label,
    session.id,
    undefined,
    session.idp,
  )
  return deps.write(session, {
    ...session.tokens,
    audiences: {
      ...session.tokens.audiences,
      [audience.key]: { ...token, subject: fingerprint },
    },
  })
}

/**
 * The refusal of an ID token to exchange that has expired. It is this
 * route's business only: an ID token may expire before the access token
 * that came with it (Entra ID's do), and an IdP need not send a new one at
 * refresh (OIDC Core §12.2), while the login token still serves every other
 * route. With a refresh token, it got past its expiry only because a
 * refresh since kept it (`refreshesSubject`): the IdP sent no new one.
 */
function expiredIdToken(session: SessionData): GatehouseError {
  const why = session.tokens.refreshToken
    ? 'the identity provider sent no new one when the session was refreshed (OIDC Core §12.2 allows that); signing in again gets a new one'
    : 'the session has no refresh token to get a new one with'
  return refusedBeforeExchange(
    gatehouseError(
      'GATEHOUSE_ERR_TOKEN_EXCHANGE_REFUSED',
      `The ID token to exchange for this route's token has expired, and ${why}. The session stays; other routes still work.`,
    ),
    'subject_expired',
  )
}
