import type * as oauth from 'oauth4webapi'
import type { IdentityProviderConfig } from '../config/types.js'
import type { DpopProofs } from '../dpop/proofs.js'
import type { GatehouseError } from '../errors.js'
import type { ClientRegistration, DpopKey } from '../types.js'
import type { IdpHttp } from './idp-http.js'
import type { OidcObserver } from './observer.js'
import type { TokenSets } from './token-sets.js'
import type { IdpOperation } from './translate.js'

/** The options of one IdP call: the HTTP client's, with a DPoP proof when a key goes with it. */
export type CallOptions = ReturnType<IdpHttp['options']> & { DPoP?: oauth.DPoPHandle }

/**
 * What a grant's module (sign-in.ts, refresh-grant.ts, ...) needs of its
 * provider's client: made once with the client (client.ts), so that a call
 * allocates nothing to reach it.
 */
export interface IdpCalls {
  readonly oidc: IdentityProviderConfig
  readonly issuer: string
  /** `oidc.scopes`, as the authorization request sends them. */
  readonly scopes: string
  /** What the routes of this provider's sessions ask for (client.ts `configuredResources`). */
  readonly resources: readonly string[]
  /** `session.claims`. */
  readonly allowClaims: readonly string[] | undefined
  /** The largest token kept, bytes (`tokens.maxSize`, token-size.ts). */
  readonly maxTokenSize: number
  readonly now: () => number
  readonly observer: OidcObserver
  readonly http: IdpHttp
  readonly auth: Promise<oauth.ClientAuth>
  readonly dpop: DpopProofs
  readonly tokens: TokenSets
  /** The oauth4webapi client, as the document in use makes it: discovery may change it. */
  client(): oauth.Client
  registration(): ClientRegistration
  /** The discovered document, or the operation's "unavailable" error. */
  metadata(operation: IdpOperation): Readonly<oauth.AuthorizationServer>
  options(dpopKey: DpopKey | undefined, options?: ReturnType<IdpHttp['options']>): Promise<CallOptions>
  /** With a key (a proof went with the request), only a bound token is taken; without, only an unbound one. */
  bound(key: DpopKey | undefined): oauth.ProcessTokenResponseOptions
  /** The gateway error for a failed call, told to the observer. */
  failed(operation: IdpOperation, err: unknown, ...secrets: (string | undefined)[]): GatehouseError
}
