import { type GatehouseError, gatehouseError } from '../errors.js'
import { expiredOnArrival } from '../oidc/token-lifetime.js'
import type { SessionData } from '../session/types.js'
import { tracing, waited } from '../tracing/spans.js'
import type { TokenAudience } from '../types.js'
import { withinGrant } from './audience.js'
import { type FlightResult, type LockedRefreshDeps, refreshUnderLock } from './locked-refresh.js'
import { redeem } from './redemption.js'
import type { Coordination } from './refresh-scope.js'
import type { SingleFlight } from './single-flight.js'
import { tokenFor } from './token-set.js'

/** What a caller's rounds through the session's flights need of the `UserTokens` that runs them. */
export interface AudienceRoundsDeps extends LockedRefreshDeps {
  readonly coordination: Coordination | undefined
  readonly flight: SingleFlight<FlightResult>
  /** How many route audiences there may be (`UserTokensOptions.audiences`). */
  readonly audiences: () => number
}

/**
 * Flights a caller may go through before its own audience is served, past
 * one per configured audience (`UserTokensOptions.audiences`): each round
 * after the first follows a flight that served another audience, so more
 * only happen under a failing IdP.
 */
const SPARE_ROUNDS = 4

/** Why a route whose resource the session's login did not ask for is refused (`withinGrant`). */
const NOT_SIGNED_IN_FOR =
  "This route's resource was not part of this sign-in, so the identity provider was not asked for its token: a new sign-in grants it. The session stays; other routes still work."

/**
 * Every redemption of a session's refresh token goes through one flight
 * per session in this process and one lock per session in the cluster,
 * whichever route asks: each redemption rotates the refresh token (RFC
 * 9700 §4.14.2), so two at once, for two resources, replay it. A flight
 * serves one audience; a caller for another that joined it goes round
 * again, finds its token there, or starts the next flight. The session
 * after the round that served `audience`.
 */
export async function audienceRounds(
  deps: AudienceRoundsDeps,
  session: SessionData,
  audience: TokenAudience | undefined,
  due: (session: SessionData) => boolean,
): Promise<SessionData> {
  // Before any flight or lock: nothing the IdP could answer would serve it (audience.ts).
  if (audience !== undefined && !withinGrant(session, audience))
    throw gatehouseError('GATEHOUSE_ERR_RESOURCE_REFUSED', NOT_SIGNED_IN_FOR)
  if (deps.coordination === 'none') return redeem(deps, session, audience)
  const scope = deps.scopeOf(session.id, audience)
  let seen = session.version
  const before = tokenFor(session.tokens, audience)?.accessToken
  const rounds = deps.audiences() + SPARE_ROUNDS
  for (let round = 0; round < rounds; round++) {
    const version = seen
    const run = () =>
      deps.flight.run(scope, () => refreshUnderLock(deps, session, version, scope, audience, due))
    // A caller that joins this process's flight waits for it; traced, the wait is a span of its own.
    const { session: after, refused } =
      tracing() && deps.flight.has(scope) ? await waited('flight', run) : await run()
    if (refused !== undefined && refused.key === (audience?.key ?? '')) throw refused.error
    if (!due(after)) return after
    // A token for this audience that came while this request waited is
    // used though due: it is as fresh as the IdP makes them (it lives
    // less than the refresh margin, or its answer took half its life),
    // and another redemption would bring one no fresher, spending the
    // refresh token again: one request once cost sixteen that way.
    const token = tokenFor(after.tokens, audience)
    if (token !== undefined && token.accessToken !== before) {
      if (token.accessTokenExpiresAt > deps.now()) return after
      throw deadOnArrival(deps, session.id, audience)
    }
    seen = after.version
  }
  throw gatehouseError('GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT')
}

/**
 * The 503 for a token the IdP issued with no life left (`expires_in` 0
 * or 1), waited out as an outage's is (`UnavailableLimit`): each request
 * asked the IdP again, 18 for 200 requests at once and one for each
 * after, a refresh redeeming the refresh token every time. A refresh's
 * holds back the session's refreshes for the Retry-After; it never ends
 * the session by `tokens.unavailableLimit`, since the refresh that issued
 * the token succeeded and cleared the count. An exchange's holds back
 * that audience's exchanges only.
 */
function deadOnArrival(
  deps: AudienceRoundsDeps,
  sessionId: string,
  audience: TokenAudience | undefined,
): GatehouseError {
  const exchange = audience?.exchange !== undefined
  const err = gatehouseError(
    exchange ? 'GATEHOUSE_ERR_TOKEN_EXCHANGE_UNAVAILABLE' : 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
    expiredOnArrival('access token'),
  )
  if (exchange) deps.unavailable.exchangeFailed(sessionId, audience.key, err, deps.unavailableLimit)
  else deps.unavailable.failed(sessionId, err, deps.unavailableLimit)
  return err
}
