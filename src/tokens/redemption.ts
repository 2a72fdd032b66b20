import type { Span } from '@opentelemetry/api'
import { gatehouseError, isGatehouseError } from '../errors.js'
import { lateAnswerOf } from '../oidc/late-answer.js'
import { providerGone } from '../oidc/providers.js'
import { rotatedRefreshToken } from '../oidc/rotated.js'
import { idpFailureOf } from '../oidc/translate.js'
import { endedElsewhere } from '../session/log-id.js'
import type { SessionData, SessionStore } from '../session/types.js'
import { ATTR, inSpan } from '../tracing/spans.js'
import type { DpopKey, SessionIssuer, TokenAudience, TokenSet } from '../types.js'
import { exchangeOutcome } from './exchange-outcome.js'
import { type ExchangeStepDeps, exchangeStep } from './exchange-step.js'
import { awaitLate, type LateWriteDeps, storeLater } from './late-writes.js'
import { refreshOutcome } from './refresh-outcome.js'
import type { RefusedClient } from './refused-client.js'
import { keeping } from './rotated-writes.js'
import { merged } from './token-set.js'

/** Redeems a session's refresh token at its provider (`IdentityProviders.refresh`), for `audience` if given. */
export interface RefreshClient {
  refresh(
    current: TokenSet,
    audience?: TokenAudience,
    dpopKey?: DpopKey,
    session?: SessionIssuer,
  ): Promise<TokenSet>
}

/** What a redemption needs of the `UserTokens` that runs it, under its flight and lock. */
export interface RedemptionDeps extends LateWriteDeps {
  readonly store: SessionStore
  readonly oidc: RefreshClient
  readonly exchange: ExchangeStepDeps
  readonly refusedClient: RefusedClient
  /** `tokens.unavailableLimit` of this config, ms; the count itself (`unavailable`) outlives a reload. */
  readonly unavailableLimit: number
  /** Told of each session a redemption ends, once its record is deleted (`UserTokensOptions.ended`). */
  readonly ended: ((id: string, key?: DpopKey) => void) | undefined
  /** The flight and lock a redemption for `audience` of session `id` runs under (`refreshScope`). */
  scopeOf(id: string, audience: TokenAudience | undefined): string
}

/**
 * Every IdP call for a session starts here. While the `Retry-After` its
 * last failure answered runs, the request gets that answer again and the
 * IdP is not asked (`UnavailableLimit`), nor while the session's provider
 * refuses the gateway's own credentials for the grant (`RefusedClient`);
 * a still-valid token is still used (`UserTokens.accessToken`).
 */
export function redeem(
  deps: RedemptionDeps,
  current: SessionData,
  audience: TokenAudience | undefined,
): Promise<SessionData> {
  const grant = audience?.exchange ? 'token_exchange' : 'refresh_token'
  const kept =
    deps.unavailable.backingOff(current.id, audience?.exchange ? audience.key : undefined) ??
    deps.refusedClient.notAsked(current.idp, grant)
  if (kept !== undefined) return Promise.reject(kept)
  if (audience?.exchange)
    return inSpan(
      'gatehouse.token.exchange',
      { [ATTR.resource]: audience.label, [ATTR.idp]: current.idp },
      async (span) => {
        try {
          const session = await exchangeStep(deps.exchange, current, audience)
          span?.setAttribute(ATTR.exchangeOutcome, 'success')
          return session
        } catch (err) {
          // Ended as a refresh at a removed provider ends it (`refreshTraced`):
          // the record goes too, not only the browser's cookie.
          if (providerGone(err)) {
            await endSession(deps, current)
            throw err
          }
          span?.setAttribute(ATTR.exchangeOutcome, exchangeOutcome(err))
          if (isGatehouseError(err) && idpFailureOf(err)?.verdict === 'unavailable')
            deps.unavailable.exchangeFailed(current.id, audience.key, err, deps.unavailableLimit)
          deps.refusedClient.failed(current.idp, err)
          throw err
        }
      },
    )
  return inSpan(
    'gatehouse.token.refresh',
    { [ATTR.resource]: audience?.label ?? '', [ATTR.idp]: current.idp },
    (span) => refreshTraced(deps, current, audience, span),
  )
}

async function refreshTraced(
  deps: RedemptionDeps,
  current: SessionData,
  audience: TokenAudience | undefined,
  span: Span | undefined,
): Promise<SessionData> {
  const started = deps.now()
  const label = audience?.label ?? ''
  let next: TokenSet
  try {
    next = await deps.oidc.refresh(current.tokens, audience, current.dpopKey, current)
  } catch (err) {
    const late = lateAnswerOf<TokenSet>(err)
    if (late !== undefined)
      awaitLate(deps, deps.scopeOf(current.id, audience), current, audience, late, started)
    let outcome = refreshOutcome(err)
    let thrown = err
    deps.refusedClient.failed(current.idp, err)
    // A proof the IdP keeps refusing is bounded the same way: the session's
    // next login makes a new key (and meets the refusal itself if it lasts).
    if (
      (outcome === 'unavailable' || outcome === 'dpop_proof_refused') &&
      deps.unavailable.failed(current.id, isGatehouseError(err) ? err : undefined, deps.unavailableLimit)
    ) {
      outcome = 'unavailable_limit'
      thrown = gatehouseError(
        'GATEHOUSE_ERR_SESSION_EXPIRED',
        'The identity provider has been unavailable for too long to refresh this session. Send the user to the login endpoint.',
        err,
      )
    }
    span?.setAttribute(ATTR.refreshOutcome, outcome)
    deps.observer?.refreshed?.(
      outcome,
      deps.now() - started,
      label,
      current.id,
      idpFailureOf(err),
      current.idp,
    )
    // The classification (src/oidc/answers.ts) said the grant is over, or the IdP was gone too long.
    if (isGatehouseError(thrown) && thrown.code === 'GATEHOUSE_ERR_SESSION_EXPIRED') {
      // Already gone: a logout or a sign-in over it revoked the grant
      // while the refresh was on its way, and may have set this browser
      // a new session's cookie, which clearing ours would clear.
      if (!(await endSession(deps, current))) endedElsewhere(thrown)
    } else {
      // A refused 200's rotated refresh token is the live one as much as
      // an accepted answer's (rotated.ts): one the store refuses is kept
      // as theirs are (`storeLater`).
      const kept = keeping(current, rotatedRefreshToken(err))
      if (kept !== undefined)
        await deps.writes.write(current, kept).catch((failed: unknown) => {
          if (isGatehouseError(failed) && failed.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE')
            storeLater(deps, deps.scopeOf(current.id, audience), current, kept)
        })
    }
    throw thrown
  }
  deps.unavailable.clear(current.id)
  span?.setAttribute(ATTR.refreshOutcome, 'success')
  deps.observer?.refreshed?.('success', deps.now() - started, label, current.id, undefined, current.idp)
  const tokens = merged(current.tokens, audience, next)
  try {
    return await deps.writes.write(current, tokens)
  } catch (err) {
    if (isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE')
      storeLater(deps, deps.scopeOf(current.id, audience), current, tokens)
    throw err
  }
}

/**
 * Ends a session the IdP, or the gateway's config, says is over: its
 * record, and what this process holds of it. False when the record was
 * gone already: something else ended the session meanwhile.
 */
async function endSession(deps: RedemptionDeps, session: SessionData): Promise<boolean> {
  deps.unavailable.clear(session.id)
  const removed = await deps.store.delete(session.id)
  deps.ended?.(session.id, session.dpopKey)
  return removed
}
