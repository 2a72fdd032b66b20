import type { IdpFailure, IdpOperation } from './translate.js'

/** What the gateway hears of the IdP's answers, beyond each call's own result. */
export interface OidcObserver {
  /** A call to the IdP failed; `failure` says how, never with a token in it. */
  failed?(failure: IdpFailure): void
  /**
   * A call authenticated the client: its credentials work for `operation`.
   * At userinfo, only its TLS client certificate, where one was offered.
   */
  accepted?(operation: IdpOperation): void
  /** A token response gave no lifetime; the token was taken to live `ASSUMED_LIFETIME` seconds (token-lifetime.ts). */
  lifetimeAssumed?(operation: IdpOperation): void
}
