import type * as oauth from 'oauth4webapi'
import type { TokenSet } from '../types.js'
import type { OidcObserver } from './observer.js'
import { expiresAt, refreshLifetime } from './token-lifetime.js'
import type { IdpOperation } from './translate.js'

/**
 * Reads a token endpoint's answers into what the gateway keeps: a
 * `TokenSet`, or the expiry of a single token, each timed from when its
 * request was sent. One per client, made with it.
 */
export class TokenSets {
  readonly #now: () => number
  readonly #observer: OidcObserver
  readonly #certificate: string | undefined

  /** `certificate`: the fingerprint of the client certificate the provider's calls present, if any. */
  constructor(now: () => number, observer: OidcObserver, certificate: string | undefined) {
    this.#now = now
    this.#observer = observer
    this.#certificate = certificate
  }

  /** When the answer's access token expires, from `sentAt`; a lifetime assumed is told to the observer. */
  expiresAt(result: oauth.TokenEndpointResponse, sentAt: number, operation: IdpOperation): number {
    return expiresAt(result, sentAt, () => this.#observer.lifetimeAssumed?.(operation))
  }

  /** The tokens of an answer, as they came (a refresh fills in what it keeps, refresh-grant.ts). */
  tokenSet(result: oauth.TokenEndpointResponse, sentAt: number, operation: IdpOperation): TokenSet {
    const expires = this.expiresAt(result, sentAt, operation)
    return {
      accessToken: result.access_token,
      accessTokenExpiresAt: expires,
      accessTokenLifetime: expires - sentAt,
      ...this.certificateOf(),
      refreshToken: result.refresh_token,
      refreshTokenExpiresAt: result.refresh_token === undefined ? undefined : this.refreshExpiresAt(result),
      idToken: result.id_token,
    }
  }

  /** The client certificate a token requested now goes with, to which the IdP may bind it (RFC 8705 §3). */
  certificateOf(): { certificate?: string } {
    const certificate = this.#certificate
    return certificate === undefined ? {} : { certificate }
  }

  /** When the refresh token, new or kept, expires, if the answer says (`refreshLifetime`): from when it came. */
  refreshExpiresAt(result: oauth.TokenEndpointResponse): number | undefined {
    const seconds = refreshLifetime(result)
    return seconds === undefined ? undefined : this.#now() + seconds * 1000
  }
}
