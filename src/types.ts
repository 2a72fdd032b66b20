/**
 * The records that cross folders: tokens as the IdP issues them and the
 * session keeps them, and what a login carries from `/login` to the
 * session. They live here, apart from the code that makes or stores them,
 * so that oidc/, session/ and tokens/ can share them without importing
 * one another.
 */
import type { ExchangeConfig } from './config/types.js'

/** The tokens of one login, as the IdP issued them and the session keeps them. */
export interface TokenSet {
  readonly accessToken: string
  /** Epoch ms at which the access token stops being accepted. */
  readonly accessTokenExpiresAt: number
  /**
   * Ms from the token's request to `accessTokenExpiresAt`: how long the IdP
   * let it live. Unknown for tokens stored before it was recorded.
   */
  readonly accessTokenLifetime?: number | undefined
  /** See `AudienceToken.certificate`. */
  readonly certificate?: string | undefined
  readonly refreshToken?: string | undefined
  /**
   * Epoch ms at which the refresh token stops being accepted, when the IdP
   * said so in its token response; the session ends with it.
   */
  readonly refreshTokenExpiresAt?: number | undefined
  readonly idToken?: string | undefined
  /**
   * Access tokens minted from the one refresh token for a route's
   * (resource, scopes), keyed by `TokenAudience.key`. They live in the same
   * record as the refresh token, so each redemption's rotated refresh token
   * and the token it came with are written by one compare-and-set. Keys
   * come only from the configuration, so the map is bounded by it.
   */
  readonly audiences?: Readonly<Record<string, AudienceToken>> | undefined
}

/** An access token for one (resource, scopes), minted by a refresh-token grant or an exchange. */
export interface AudienceToken {
  readonly accessToken: string
  /** Epoch ms at which it stops being accepted. */
  readonly accessTokenExpiresAt: number
  /**
   * Ms from the token's request to `accessTokenExpiresAt`: how long the IdP
   * let it live. Unknown for tokens stored before it was recorded.
   */
  readonly accessTokenLifetime?: number | undefined
  /**
   * The SHA-256 fingerprint of the client certificate the token was
   * requested with (`tls.cert`), which the IdP may have bound it to (RFC
   * 8705 §3); absent when there was none, or in a record from before it was kept.
   */
  readonly certificate?: string | undefined
  /**
   * An exchanged token's: the fingerprint of the subject token it was
   * exchanged from. A new subject token (after a refresh) makes it stale.
   */
  readonly subject?: string | undefined
}

/**
 * A DPoP key pair (RFC 9449) as a session record keeps it: the private JWK,
 * whose public members are the public key. Only ever stored sealed.
 */
export interface DpopKey {
  /** The JWS algorithm the key signs with (`oidc.dpopAlgorithm` when it was made). */
  readonly alg: string
  /** The private key as a JWK (RFC 7517), public members included. */
  readonly jwk: Readonly<Record<string, string>>
}

/**
 * The OAuth client a login was made with: the IdP's issuer and the client
 * id registered there. Every token of the login was issued to it, and is
 * good at it alone: a refresh token is bound to the client it was issued
 * to (RFC 6749 §6), and at another issuer it is another party's secret.
 */
export interface ClientRegistration {
  /** The issuer identifier as configured (`issuer`), compared as a string (OIDC Discovery §4.3). */
  readonly issuer: string
  readonly clientId: string
}

/** Whose tokens a session holds: the provider it signed in with, by name, and the registration that issued them. */
export interface SessionIssuer {
  /** `identityProviders[].name`; `default` for the `oidc:` shorthand. */
  readonly idp: string
  /** Absent in a session sealed before sessions recorded it (see `IdentityProviders`). */
  readonly registration?: ClientRegistration | undefined
}

/** What a login attempt must remember between `/login` and `/callback`. */
export interface LoginState {
  readonly state: string
  readonly nonce: string
  readonly codeVerifier: string
  readonly returnTo: string
  /** `prompt=none`: a silent check, which a strict OP answers without a refresh token (OIDC Core §11). */
  readonly silent?: boolean
  /** The provider the browser was sent to, whose answer the callback expects; absent: the shorthand's. */
  readonly idp?: string
  /**
   * When the login started, epoch ms by the gateway's clock: a back-channel
   * logout of the user (`sub` only) that came after it ends the session it
   * makes (`SessionStore.subLoggedOutAt`). Absent in a login started
   * before logins recorded it.
   */
  readonly startedAt?: number
  /**
   * The registration the browser was sent to, whose code the callback
   * redeems only there; absent in a login started before it was recorded.
   */
  readonly registration?: ClientRegistration
  /**
   * With `oidc.dpop` when the login started: the session's key, made then
   * so the authorization code is bound to it (RFC 9449 §10); sealed in the
   * login cookie. The callback uses it even if a reload has turned DPoP off since.
   */
  readonly dpopKey?: DpopKey
  /**
   * Which resources the authorization request named (RFC 8707 §2), as
   * `resourcesDigest` makes it: the callback records them for the session
   * only if its client would name the same. Absent: a login started before
   * logins recorded them.
   */
  readonly resources?: string
  /**
   * The `max_age` the authorization request carried, in seconds: the ID
   * token must then say when the user authenticated (`auth_time`), no
   * longer ago than that (OIDC Core §3.1.2.1, §3.1.3.7 item 11).
   */
  readonly maxAge?: number
  /**
   * The key (cookie form, `SessionKey`) of the session of this frontend the
   * browser held when the login started: the IdP may continue that
   * session's grant, which a sign-in refused after the code exchange then
   * must not revoke, and a sign-in that succeeds ends that session, and
   * revokes its grant unless the new session or another may share it,
   * which only the record the key opens can tell. Noted at the login, as
   * a `SameSite=Strict` session cookie does not come with the IdP's
   * cross-site redirect to the callback. Sealed in the login cookie, which
   * only the callback reads, as the session cookie seals it.
   */
  readonly heldKey?: string
  /**
   * What a login started by a version before `heldKey` noted instead: the
   * id of that session, which ends it but cannot open it.
   */
  readonly heldSession?: string
}

/** What a completed login hands to the session. */
export interface LoginResult {
  /** The provider that signed the user in (`identityProviders[].name`). */
  readonly idp: string
  /** The registration that issued the tokens: the session's calls go only where it still is. */
  readonly registration: ClientRegistration
  readonly tokens: TokenSet
  /**
   * The session's DPoP key, which the tokens are bound to: made when
   * `oidc.dpop` was on at sign-in, and used for the session's life.
   */
  readonly dpopKey?: DpopKey | undefined
  readonly sub: string
  readonly sid: string | undefined
  readonly claims: Record<string, unknown>
  /**
   * The resources the authorization request named (RFC 8707 §2), which its
   * refresh token may be redeemed for; absent when they are not known.
   */
  readonly resources?: readonly string[] | undefined
  /** When its login started (`LoginState.startedAt`), when known. */
  readonly startedAt?: number | undefined
  /**
   * When the user authenticated at the IdP, the ID token's `auth_time`
   * (OIDC Core §2): seconds by the IdP's clock; absent when it has none.
   */
  readonly authTime?: number | undefined
}

/** A client-credentials access token. */
export interface CachedToken {
  readonly accessToken: string
  readonly expiresAt: number
  /** Ms from the token's request to `expiresAt`; unknown for tokens cached before it was recorded. */
  readonly lifetime?: number | undefined
  /**
   * The gateway's DPoP key the token is bound to (RFC 9449), made with the
   * token and gone with it: each new token rotates the key. It is cached
   * with the token, sealed like it, so every instance can prove it.
   */
  readonly dpopKey?: DpopKey | undefined
}

/**
 * What a route's token is for: an RFC 8707 resource, a down-scoped `scope`,
 * or both. Routes that name neither use the login's access token and have
 * no audience.
 */
export interface TokenAudience {
  /** Stable key of the token in the session record; equal for routes that ask for the same token. */
  readonly key: string
  readonly resource: string | undefined
  readonly scopes: readonly string[]
  /** Bounded label for metrics: the resource, or `scope:<scopes>` for a scope-only token. */
  readonly label: string
  /**
   * The token is bound to the session's DPoP key (RFC 9449): asked for with
   * a proof. `false` for a `dpop: false` route, whose token stays bearer,
   * and for a session that has no key (`sessionAudience`).
   */
  readonly dpop: boolean
  /**
   * A `token: exchange` route's: the token comes from exchanging the
   * session's subject token (RFC 8693), not from its refresh token.
   */
  readonly exchange?: ExchangeConfig | undefined
}
