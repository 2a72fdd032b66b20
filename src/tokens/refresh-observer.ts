import type { IdpFailure } from '../oidc/translate.js'
import type { ExchangeObserver } from './exchange-step.js'
import type { RefreshOutcome } from './refresh-outcome.js'

/** What the gateway hears of a session's refreshes and exchanges (`UserTokensOptions.observer`). */
export interface RefreshObserver extends ExchangeObserver {
  /**
   * `resource` is the audience's bounded label, `''` for the login token;
   * `failure`, what the IdP answered when it was not a success; `idp`,
   * the session's provider, which the refresh went to.
   */
  refreshed?(
    outcome: RefreshOutcome,
    ms: number,
    resource: string,
    sessionId: string,
    failure?: IdpFailure,
    idp?: string,
  ): void
  joined?(): void
  /**
   * Tokens of the session's provider `idp` live `lifetime` ms, less than
   * twice `refreshBefore`: they are renewed halfway through their life.
   * Told at every use of such a token; the observer says it once.
   */
  shortLived?(lifetime: number, refreshBefore: number, idp?: string): void
  /** A refused token did not force a refresh: another did on this route within the cool-down. */
  cooledDown?(route: string): void
}
