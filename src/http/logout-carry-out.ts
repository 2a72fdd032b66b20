import type { FastifyBaseLogger } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { errorCatalogue, isGatehouseError, StoreUnavailableError } from '../errors.js'
import type { OidcClient } from '../oidc/client.js'
import type { IdentityProviders } from '../oidc/providers.js'
import type { Sessions } from '../session/sessions.js'
import type { ReplayCache, ReplayKept } from '../tokens/types.js'
import type { Verified } from './logout-token-checks.js'
import { clientsOf, replayKey } from './logout-token-clients.js'
import type { LogoutAttempt, OwedLogout, OwedLogouts } from './owed-logouts.js'
import { lookedUpBy, sessionsOfClient } from './sessions-of-client.js'

export interface LogoutCarryOutDeps {
  readonly config: { readonly session: Pick<GatehouseConfig['session'], 'absoluteTimeout'> }
  readonly providers: IdentityProviders
  readonly sessions: Sessions
  readonly replay: ReplayCache
  /** Where a logout the store failed goes, to be carried out once it answers. */
  readonly owed: OwedLogouts<OwedLogout>
}

/** How long a logout token's `jti` is remembered once carried out: past its acceptable age, plus skew. */
export const JTI_TTL_MS = 5 * 60_000

/**
 * How long an IdP session (or a user, for a token naming only a `sub`) a
 * logout token ended is remembered for the sign-ins of it still
 * completing: a code issued before the logout may be
 * redeemed until it expires, at most 10 minutes (OIDC Core §3.1.3.2 leaves
 * its lifetime to the OP; RFC 6749 §4.1.2 recommends no more than that).
 */
const LOGGED_OUT_TTL_MS = 10 * 60_000

/**
 * How long a logout token's `jti` is held while it is carried out, so a
 * parallel delivery of it is asked to come again meanwhile: no longer than
 * the `Retry-After` of the 503 its failure gets, nor of the 503 that
 * parallel delivery gets, so the resend finds the hold over. The store is
 * what fails, and a store gone (Redis killed half way) cannot take the
 * forget either; a `jti` noted for JTI_TTL_MS up front then refused the
 * IdP's resend as a replay and the sessions not yet ended ran on. A
 * delivery that comes after the hold while the first is still at work
 * ends the same sessions again, which changes nothing.
 */
const JTI_HOLD_MS =
  Math.min(
    errorCatalogue.GATEHOUSE_ERR_STORE_UNAVAILABLE.retryAfter,
    errorCatalogue.GATEHOUSE_ERR_LOGOUT_IN_PROGRESS.retryAfter,
  ) * 1_000

/**
 * Ends the sessions a verified logout token names (§2.7), once per token
 * and client, and owes what the store failed: whether the token came in a
 * delivery, was held for its issuer's keys, or was owed since an outage.
 */
export class LogoutCarryOut {
  readonly #deps: LogoutCarryOutDeps

  constructor(deps: LogoutCarryOutDeps) {
    this.#deps = deps
  }

  /**
   * Carries out a verified token at each client it is for (`as`, as
   * `carryOut`). One the store failed for is owed: the IdP gets its 503
   * with Retry-After, but oidc-provider and Keycloak send a logout token
   * once, whatever the answer, so the gateway carries it out itself once
   * the store answers, or the user's sessions would run on after the outage.
   */
  carriedOut(
    { oidc, claims }: Verified,
    named: readonly OidcClient[],
    at: number,
    log: FastifyBaseLogger,
    as: ReplayKept = 'done',
    stop?: AbortSignal,
  ) {
    const { config, owed } = this.#deps
    return Promise.allSettled(
      clientsOf(oidc, named).map(async (client) => {
        const what: OwedLogout = {
          registration: client.registration,
          idp: client.name,
          claims,
          seen: replayKey(client.registration, claims),
          at,
        }
        try {
          return { what, outcome: await this.carryOut(what, as, stop) }
        } catch (err) {
          if (isGatehouseError(err) && err.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE')
            // Past the absolute timeout, every session the token could name has expired.
            owed.add(
              what.seen,
              {
                idp: what.idp,
                issuer: what.registration.issuer,
                what,
                budgetMs: config.session.absoluteTimeout,
              },
              log,
            )
          throw err
        }
      }),
    )
  }

  /**
   * Ends the sessions a verified token names, once per token: how many it
   * ended, or what another delivery of the token left (`done`, `owed`,
   * `held`). Kept `as` owed when its delivery was answered 503. `stop`
   * (the shutdown's last pass running out) ends the wait on each store
   * call, and no call starts after it: a store that holds its connection
   * open without answering (frozen, not down) otherwise held the try, and
   * its command, until the store's timeout, past the drain.
   */
  async carryOut(what: OwedLogout, as: ReplayKept = 'done', stop?: AbortSignal): Promise<LogoutAttempt> {
    const { providers, sessions, replay } = this.#deps
    const { registration, claims, seen } = what
    const claim = await untilStopped(stop, () => replay.claim(seen, JTI_HOLD_MS))
    if (claim !== 'claimed') return claim
    try {
      // §2.7: with a sid, end that IdP session's sessions; with only a sub, all of the user's.
      // The token is for a client (its `aud`), not for one of our entries:
      // every entry with this issuer and client id, in any frontend, signed
      // its sessions in at that client, so all of theirs end, and no other's.
      // The verifier refused a token naming neither (§2.4).
      const by = lookedUpBy(claims)!
      // Before the sessions are listed: a sign-in of this IdP session whose
      // record is not written yet ends once it is (Sessions.create).
      if ('sid' in by)
        await untilStopped(stop, () =>
          sessions.store.noteSidLoggedOut(registration, by.sid, LOGGED_OUT_TTL_MS),
        )
      // Naming only the user, it notes when it came (`at`: a logout owed
      // since a store outage keeps the time it came), and a sign-in of the
      // user that started before then ends once its record is written,
      // unless its ID token says the user authenticated after the token's
      // iat (Sessions.create). Rounded up: RFC 7519 §2 lets a NumericDate
      // have a fraction, which must not make a sign-in look fresher.
      else
        await untilStopped(stop, () =>
          sessions.store.noteSubLoggedOut(
            registration,
            by.sub,
            { at: what.at, iat: Math.ceil(claims.iat) },
            LOGGED_OUT_TTL_MS,
          ),
        )
      const ids = await untilStopped(stop, () =>
        sessionsOfClient(sessions.store, providers, registration, what.idp, by),
      )
      await untilStopped(stop, () => sessions.endAll(ids))
      await untilStopped(stop, () => replay.keep(seen, JTI_TTL_MS, as))
      return ids.length
    } catch (err) {
      // Not carried out (the store failing, maybe after ending some), or
      // not remembered as done: the 503 asks the IdP to send the token
      // again, and the repeat must not be refused as a replay, or the
      // sessions not yet ended run on. A store that cannot forget lets the
      // hold lapse (JTI_HOLD_MS), as it does once the drain has ended: no
      // call is started then, to be left pending as the stores close.
      if (!stop?.aborted) await replay.forget(seen).catch(() => {})
      throw err
    }
  }
}

/**
 * `call`, unless `stop` has aborted, waited for until it does: then the
 * store's 503, its reason the drain, for what was not carried out is owed
 * (`carriedOut`, OwedLogouts). The command sent stays on the connection,
 * which the stores' close, bounded by the drain too, ends (server/lasting.ts).
 */
function untilStopped<T>(stop: AbortSignal | undefined, call: () => Promise<T>): Promise<T> {
  if (stop === undefined) return call()
  const cut = () =>
    Object.assign(new StoreUnavailableError(), {
      reason: "the shutdown's drain ended before the store answered",
    })
  if (stop.aborted) return Promise.reject(cut())
  return new Promise<T>((resolve, reject) => {
    const end = () => reject(cut())
    stop.addEventListener('abort', end, { once: true })
    call()
      .then(resolve, reject)
      .finally(() => stop.removeEventListener('abort', end))
  })
}
