/**
 * A DEVELOPMENT-ONLY OpenID Provider: panva's oidc-provider with its dev
 * login form, where any user name signs in. `npm run demo` and the test
 * suite use it; never put it in front of real users.
 *
 * It rotates refresh tokens and revokes the grant when a used one comes
 * back, like production IdPs, and counts what it saw so tests can assert
 * "exactly one refresh" and "zero replays".
 *
 * Its `profile` says how it issues refresh tokens. `strict` (the default)
 * is oidc-provider's own behaviour, that of certified OPs: OIDC Core §11
 * honours `offline_access` only with `prompt=consent`, and the user
 * consents on a page. `lenient` issues one whenever the client may have
 * one and implies consent, as Keycloak does; the demo runs it.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider, {
  type AsymmetricSigningAlgorithm,
  type Configuration,
  errors,
  type KoaContextWithOIDC,
} from 'oidc-provider'
import { atTheEdge, type CannedAnswer, type CannedEndpoint } from './idp-edge.js'
import {
  type DevTokenExchange,
  EXCHANGE_GRANT_TYPES,
  type ExchangeStats,
  exchangeClaims,
  registerExchangeGrants,
} from './idp-exchange.js'
import {
  type DevMtls,
  type DevMtlsClient,
  MTLS_AUTH_METHODS,
  mtlsClientMetadata,
  mtlsFeature,
} from './idp-mtls.js'
import {
  type DevIdpQuirks,
  keptRefreshTokens,
  quirkClientMetadata,
  quirkConfiguration,
  quirkFeatures,
  quirkMiddleware,
} from './idp-quirks.js'

export type { CannedAnswer, CannedEndpoint } from './idp-edge.js'
export type { DevTokenExchange } from './idp-exchange.js'
export type { DevMtls, DevMtlsClient } from './idp-mtls.js'
export type { DevIdpQuirks, PaddedTokens } from './idp-quirks.js'

export interface DevClient extends DevMtlsClient {
  readonly clientId: string
  /** Required unless `tokenEndpointAuthMethod` is `private_key_jwt`. */
  readonly clientSecret?: string | undefined
  readonly redirectUris: readonly string[]
  readonly postLogoutRedirectUris?: readonly string[]
  /** OpenID Connect Back-Channel Logout 1.0: where `endSession` delivers logout tokens. */
  readonly backchannelLogoutUri?: string
  /**
   * Default `client_secret_basic`. oidc-provider accepts only the registered
   * method and answers `invalid_client` to the other.
   */
  readonly tokenEndpointAuthMethod?:
    | 'client_secret_basic'
    | 'client_secret_post'
    | 'private_key_jwt'
    | 'tls_client_auth'
    | 'self_signed_tls_client_auth'
  /** Public JWKs the client signs `private_key_jwt` assertions with (RFC 7523 §2.2). */
  readonly jwks?: { readonly keys: readonly Record<string, unknown>[] }
  /** OIDC Registration §2 `id_token_signed_response_alg`; default oidc-provider's (RS256). */
  readonly idTokenSignedResponseAlg?: 'RS256' | 'PS256' | 'ES256' | 'EdDSA'
  /** RFC 9126 §6: authorization requests must come through PAR. Needs `par: true`. */
  readonly requirePushedAuthorizationRequests?: boolean
  /**
   * RFC 9449 §5.2 `dpop_bound_access_tokens`: every token request must
   * carry a DPoP proof, and every access token is bound to its key.
   */
  readonly dpopBoundAccessTokens?: boolean
}

/**
 * How refresh tokens are issued. `strict`: oidc-provider's defaults (OIDC
 * Core §11; `offline_access` needs `prompt=consent`; the user consents).
 * `lenient`: whenever the client may have one; consent is implied.
 */
export type DevIdpProfile = 'strict' | 'lenient'

export interface DevIdpOptions {
  /** Default `strict`. */
  readonly profile?: DevIdpProfile
  /**
   * Where profile claims (name, email) go. `id_token` (the default) puts
   * them in the ID token, as most production IdPs do; `userinfo` is
   * oidc-provider's default (OIDC Core §5.4): only userinfo has them when
   * an access token is issued.
   */
  readonly profileClaims?: 'id_token' | 'userinfo'
  /** Advertise and serve Pushed Authorization Requests (RFC 9126). Default false. */
  readonly par?: boolean
  /**
   * Require a server-provided nonce in every DPoP proof (RFC 9449 §8): a
   * proof without the current one is answered `use_dpop_nonce` with a
   * fresh `DPoP-Nonce`. Default false, oidc-provider's default.
   */
  readonly dpopNonce?: boolean
  /**
   * The DPoP proof algorithms the IdP accepts and advertises
   * (`dpop_signing_alg_values_supported`). Default oidc-provider's:
   * ES256, Ed25519 and EdDSA.
   */
  readonly dpopAlgorithms?: readonly AsymmetricSigningAlgorithm[]
  /**
   * DPoP at all (oidc-provider's `features.dPoP`). Default on. Off, the IdP
   * advertises no DPoP algorithm, ignores a proof and issues Bearer tokens.
   */
  readonly dpop?: boolean
  /**
   * Accept POST at the end-session endpoint (RP-Initiated Logout 1.0 §2),
   * as Keycloak does; oidc-provider's default refuses it (404), as some
   * OPs do. Default false.
   */
  readonly endSessionPost?: boolean
  /**
   * More discovery metadata, e.g. `prompt_values_supported`, which
   * oidc-provider does not advertise itself and Keycloak or Entra ID do.
   */
  readonly discovery?: Record<string, unknown>
  /**
   * The `sub` userinfo answers with, to play an IdP (or a cache in front
   * of one) that answers for another user; OIDC Core §5.3.2 says the RP
   * must refuse it. oidc-provider itself always answers with the account's
   * own `sub`, so the response is rewritten on its way out. Default: the
   * user's own.
   */
  readonly userinfoSubject?: (sub: string) => string
  /**
   * Members written over every userinfo answer on its way out, whatever
   * oidc-provider would release: an IdP's plain JSON userinfo is signed by
   * nothing, and may say any `iss`. Default none.
   */
  readonly userinfoOverrides?: Readonly<Record<string, unknown>>
  /**
   * More claims of each account, merged over its own, such as aggregated
   * or distributed claims (OIDC Core §5.6.2: `_claim_names` and
   * `_claim_sources`). oidc-provider releases only those the scopes grant.
   */
  readonly accountClaims?: (sub: string) => Readonly<Record<string, unknown>>
  /** Token endpoint auth methods the IdP supports and advertises; default oidc-provider's. */
  readonly clientAuthMethods?: readonly string[]
  /** Advertise a userinfo endpoint. Default true. */
  readonly userinfo?: boolean
  /**
   * Another server on the IdP's origin, as a resource server behind the
   * same host name and port: requests whose path starts with `prefix` go to
   * `handle`, not to oidc-provider. RFC 9449 §9: its DPoP nonces are its
   * own, not the IdP's, though the origin is the same.
   */
  readonly neighbour?: {
    readonly prefix: string
    readonly handle: (req: IncomingMessage, res: ServerResponse) => void
  }
  /** 0 (the default) picks a free port. */
  readonly port?: number
  /** Default `127.0.0.1`. */
  readonly host?: string
  readonly clients: readonly DevClient[]
  /**
   * Scopes the IdP knows beyond its own (openid, profile, offline_access,
   * orders.read, reports.read), which the clients may ask for in a
   * client-credentials grant.
   */
  readonly extraScopes?: readonly string[]
  /** Seconds; default 60. */
  readonly accessTokenTtl?: number
  /** Seconds; default 3600. */
  readonly idTokenTtl?: number
  /** Seconds; default `accessTokenTtl`. */
  readonly clientCredentialsTtl?: number
  /** Seconds; default 86 400 (one day). */
  readonly refreshTokenTtl?: number
  /**
   * Add `refresh_expires_in` to every token response that carries a
   * refresh token, or leaves the client its old one (the quirk
   * `noRefreshTokenOnRefresh`): the seconds it has left, as Keycloak
   * reports it. oidc-provider itself says nothing. A number is reported
   * in its place whatever the token's life: an IdP that reports an absurd
   * lifetime. Default false.
   */
  readonly refreshExpiresIn?: boolean | number
  /** Latency added to every `POST /token`, in ms, or a function asked per request. */
  readonly tokenEndpointDelayMs?: number | (() => number)
  /** Private JWKs to sign with (one or several), so tests can mint logout tokens the IdP would have signed. */
  readonly signingKey?: Record<string, unknown> | readonly Record<string, unknown>[]
  /**
   * RFC 8707 resource indicators (`features.resourceIndicators`): the
   * resource servers the IdP knows. Off when absent. Every access token for
   * one is audience-bound (`aud` is the resource) and carries only its
   * scopes; an unknown resource is `invalid_target`.
   */
  readonly resourceIndicators?: DevResourceIndicators
  /** Deviations of real OPs to reproduce (dev/idp-quirks.ts); none by default. */
  readonly quirks?: DevIdpQuirks
  /**
   * Mutual TLS (RFC 8705, dev/idp-mtls.ts): client certificates arrive from
   * a TLS terminator in front; advertise its URLs as `mtls_endpoint_aliases`
   * through `discovery`. Off when absent.
   */
  readonly mtls?: DevMtls
  /**
   * Token exchange (RFC 8693) and Entra ID's on-behalf-of flow
   * (dev/idp-exchange.ts): the audiences a token may be exchanged for.
   * Off when absent: then both grants are `unsupported_grant_type`.
   */
  readonly tokenExchange?: DevTokenExchange
  /**
   * oidc-provider's FAPI 2.0 Security Profile mode (`features.fapi`): PKCE
   * required, client assertions with the issuer as sole `aud`. Combine with
   * `par`, a client that requires PAR, and `mtls` or DPoP. Default off.
   */
  readonly fapi?: boolean
}

export interface DevResourceIndicators {
  /** Resource URI → the scopes it accepts and its token format (default opaque). */
  readonly resources: Readonly<Record<string, { scopes?: readonly string[]; format?: 'opaque' | 'jwt' }>>
  /**
   * Resources the token endpoint refuses with `invalid_target` although the
   * login may ask for them (a policy at the IdP's edge). The refusal comes
   * before oidc-provider sees the request: oidc-provider itself checks the
   * resource only after it has rotated the refresh token, which would leave
   * the client with a spent one.
   */
  readonly refusedAtTokenEndpoint?: readonly string[]
}

/**
 * How the back-channel endpoints (discovery, JWKS, token, revocation,
 * introspection) misbehave: `503` answers Service Unavailable, `reset`
 * destroys the socket, `hang` never answers, `flood` answers 200 JSON that
 * does not end (a string value streamed until the client hangs up, or
 * FLOOD_LIMIT bytes).
 */
export type FaultMode = 'ok' | '503' | 'reset' | 'hang' | 'flood'

/** Live counters; `resetStats()` zeroes them. */
export interface IdpStats extends ExchangeStats {
  /** Every `POST /token` the server received, faulted or not. */
  tokenRequests: number
  authorizationCodeGrants: number
  refreshGrants: number
  /**
   * Refresh tokens presented after they were rotated away. The first replay
   * of a token revokes its grant; every later one is counted too.
   */
  refreshReplays: number
  clientCredentialsGrants: number
  /** Token-endpoint errors of any kind, replays included. */
  grantErrors: number
  /** `POST /token` requests that carried a `DPoP` proof header. */
  dpopTokenRequests: number
  /** Token-endpoint answers `use_dpop_nonce` (RFC 9449 §8). */
  dpopNonceChallenges: number
  /** Grants revoked: by a replay, by revocation of a refresh token, or by `endSession`. */
  revokedGrants: number
  /** Revocation requests answered 200 (RFC 7009 §2.2: unknown tokens are answered 200 too). */
  revocations: number
  /** Logout tokens the RP acknowledged with 200 or 204. */
  backchannelLogouts: number
  backchannelLogoutErrors: number
  /** Bytes of `flood` answers written before their clients hung up. */
  floodBytes: number
}

/** RFC 7662 §2.2, as far as the dev IdP knows it. */
export interface Introspection {
  active: boolean
  [claim: string]: unknown
}

export interface EndSessionResult {
  /** Sessions ended. */
  readonly sessions: number
  /** Logout tokens delivered. */
  readonly delivered: number
  readonly failed: number
}

export interface DevIdp {
  readonly issuer: string
  readonly stats: IdpStats
  readonly provider: Provider
  resetStats(): void
  /** Adds latency to every `POST /token`. */
  setTokenEndpointDelay(ms: number | (() => number)): void
  /**
   * Holds every `POST /token` answer back this long after the request was
   * carried out: an IdP that rotated a refresh token and is slow to say so.
   */
  setTokenAnswerDelay(ms: number): void
  /**
   * Holds every `POST /token` answer back, after the request was carried
   * out (a refresh token rotated), until `gate` resolves; without one,
   * answers go at once again. For a test that changes a peer of the RP
   * between the IdP's work and the RP's reading of it.
   */
  holdTokenAnswers(gate?: () => Promise<void>): void
  /**
   * Holds every `POST /token` request back, before the provider reads it,
   * until `gate` resolves; without one, requests are served at once again.
   * For a test that changes the grant (revokes it) between the RP's
   * sending of a refresh and the IdP's carrying it out.
   */
  holdTokenRequests(gate?: () => Promise<void>): void
  /** Makes the back-channel endpoints fail in the given way, until `setDown('ok')`. */
  setDown(mode: FaultMode): void
  /** Same as `setDown`. */
  setFault(mode: FaultMode): void
  /** Answers requests to `endpoint` with `answer` until called again without one. */
  answer(endpoint: CannedEndpoint, answer?: CannedAnswer): void
  /**
   * From now on, the discovery document says `members` over what
   * oidc-provider advertises: an OP whose metadata changes while its
   * relying parties run (an endpoint moved, an algorithm added). Without
   * them, it advertises as configured again.
   */
  advertise(members?: Readonly<Record<string, unknown>>): void
  /** Deletes a refresh token from the provider's store, as an OP's cleanup job or an administrator does. */
  forgetRefreshToken(token: string): Promise<void>
  /**
   * Lets the client's secret expire at the provider (its
   * `client_secret_expires_at` in the past, as Entra ID's secrets do after
   * at most two years), or, with `false`, renews it: while expired,
   * oidc-provider refuses the client's every authentication with
   * `invalid_client` (RFC 6749 §5.2), as a wrong secret is.
   */
  expireClientSecret(clientId: string, expired?: boolean): Promise<void>
  /** Looks a token (access, client-credentials or refresh) up in the provider's own store. */
  introspect(token: string): Promise<Introspection>
  /** Whether the provider still accepts this access token. */
  isActive(accessToken: string): Promise<boolean>
  /** What the provider knows of a live access token: expiry, subject, client and scope. */
  describe(accessToken: string): Promise<Record<string, unknown> | undefined>
  /**
   * IdP-initiated logout: ends the user's sessions (every user's without
   * `sub`), revokes their grants and posts a logout token to each client
   * that registered a `backchannelLogoutUri`.
   */
  endSession(sub?: string): Promise<EndSessionResult>
  close(): Promise<void>
}

const SCOPES = ['openid', 'profile', 'offline_access', 'orders.read', 'reports.read']

/** Where a `flood` answer stops if its client never hangs up. */
const FLOOD_LIMIT = 256 * 1024 * 1024

/** A 200 JSON answer whose string never closes: written while the socket takes it. */
/** `res`'s answer, head and body, sent `ms` after it was made. */
function heldBack(res: ServerResponse, ms: number): void {
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse
  res.end = ((...args: unknown[]) => {
    setTimeout(() => end(...args), ms)
    return res
  }) as ServerResponse['end']
}

function heldUntil(res: ServerResponse, gate: () => Promise<void>): void {
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse
  res.end = ((...args: unknown[]) => {
    gate().then(
      () => end(...args),
      () => end(...args),
    )
    return res
  }) as ServerResponse['end']
}

function flood(res: ServerResponse, stats: IdpStats): void {
  const chunk = Buffer.alloc(64 * 1024, 'A')
  res.writeHead(200, { 'content-type': 'application/json' })
  res.write('{"access_token":"')
  let written = 0
  const pump = () => {
    while (!res.destroyed && written < FLOOD_LIMIT) {
      written += chunk.length
      stats.floodBytes += chunk.length
      if (!res.write(chunk)) {
        res.once('drain', pump)
        return
      }
    }
    if (!res.destroyed) res.end('"}')
  }
  pump()
}

function emptyStats(): IdpStats {
  return {
    tokenRequests: 0,
    authorizationCodeGrants: 0,
    refreshGrants: 0,
    refreshReplays: 0,
    clientCredentialsGrants: 0,
    grantErrors: 0,
    dpopTokenRequests: 0,
    dpopNonceChallenges: 0,
    revokedGrants: 0,
    revocations: 0,
    backchannelLogouts: 0,
    backchannelLogoutErrors: 0,
    floodBytes: 0,
    tokenExchanges: 0,
    onBehalfOf: 0,
    byAudience: {},
  }
}

interface TokenParams {
  grant_type?: string
  refresh_token?: string
}

/** A method oidc-provider's Client model has and its type definitions omit. */
interface BackchannelClient {
  backchannelLogout(sub: string, sid: string): Promise<void>
}

interface StoredSession {
  accountId?: string
  authorizations?: Record<string, { sid?: string; grantId?: string }>
}

function rewriteSubject(res: ServerResponse, subject: (sub: string) => string) {
  const end = res.end.bind(res) as (chunk?: unknown) => ServerResponse
  res.end = ((chunk?: unknown) => {
    if (res.statusCode !== 200 || chunk === undefined) return end(chunk)
    const claims = JSON.parse(String(chunk)) as { sub: string }
    const body = JSON.stringify({ ...claims, sub: subject(claims.sub) })
    res.setHeader('content-length', Buffer.byteLength(body))
    return end(body)
  }) as ServerResponse['end']
}

function overwriteUserinfo(res: ServerResponse, overrides: Readonly<Record<string, unknown>>) {
  const end = res.end.bind(res) as (chunk?: unknown) => ServerResponse
  res.end = ((chunk?: unknown) => {
    if (res.statusCode !== 200 || chunk === undefined) return end(chunk)
    const body = JSON.stringify({ ...(JSON.parse(String(chunk)) as object), ...overrides })
    res.setHeader('content-length', Buffer.byteLength(body))
    return end(body)
  }) as ServerResponse['end']
}

/** Adds Keycloak's `refresh_expires_in` to a token response, from the refresh token's own expiry. */
function reportRefreshExpiry(res: ServerResponse, provider: Provider, reported: boolean | number) {
  const end = res.end.bind(res) as (chunk?: unknown) => ServerResponse
  res.end = ((chunk?: unknown) => {
    if (res.statusCode !== 200 || chunk === undefined) return end(chunk)
    const body = JSON.parse(String(chunk)) as { refresh_token?: string }
    const token = body.refresh_token || keptRefreshTokens.get(res)
    if (!token) return end(chunk)
    provider.RefreshToken.find(token).then(
      (token) => {
        const seconds =
          typeof reported === 'number'
            ? reported
            : token?.exp === undefined
              ? undefined
              : token.exp - Math.floor(Date.now() / 1000)
        const text = JSON.stringify({ ...body, refresh_expires_in: seconds })
        res.setHeader('content-length', Buffer.byteLength(text))
        end(text)
      },
      () => end(chunk),
    )
    return res
  }) as ServerResponse['end']
}

/**
 * Browsers refuse a `SameSite=None` cookie without `Secure`, which a dev IdP
 * on plain http cannot set: its session cookie would be dropped and every
 * login would loop. Sent `Lax` instead, it still reaches the IdP on a
 * same-site POST, and every port of 127.0.0.1 is one site.
 */
function sameSiteLaxOverHttp(res: ServerResponse) {
  const setHeader = res.setHeader.bind(res)
  res.setHeader = ((name: string, value: number | string | readonly string[]) => {
    if (name.toLowerCase() !== 'set-cookie' || typeof value === 'number') return setHeader(name, value)
    const lines = (typeof value === 'string' ? [value] : [...value]).map((line) =>
      /;\s*secure\b/i.test(line) ? line : line.replace(/;\s*samesite=none/i, '; samesite=lax'),
    )
    return setHeader(name, lines)
  }) as ServerResponse['setHeader']
}

async function impliedConsent(ctx: KoaContextWithOIDC) {
  const accountId = ctx.oidc.session?.accountId
  if (!accountId || !ctx.oidc.client) return undefined
  const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId })
  grant.addOIDCScope(SCOPES.join(' '))
  grant.addOIDCClaims(['sub', 'sid', 'name', 'locale'])
  // Consent to each resource the request names, for the scopes it accepts.
  for (const [resource, server] of Object.entries(ctx.oidc.resourceServers ?? {})) {
    if (server.scope) grant.addResourceScope(resource, server.scope)
  }
  await grant.save()
  return grant
}

export async function startDevIdp(options: DevIdpOptions): Promise<DevIdp> {
  const host = options.host ?? '127.0.0.1'
  const server: Server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const issuer = `http://${host}:${port}`
  const accessTokenTtl = options.accessTokenTtl ?? 60
  const lenient = options.profile === 'lenient'
  const quirks = options.quirks ?? {}

  const configuration: Configuration = {
    clients: options.clients.map((c) => ({
      client_id: c.clientId,
      ...(c.clientSecret === undefined ? {} : { client_secret: c.clientSecret }),
      ...(c.jwks ? { jwks: { keys: [...c.jwks.keys] } } : {}),
      ...(c.requirePushedAuthorizationRequests ? { require_pushed_authorization_requests: true } : {}),
      ...(c.dpopBoundAccessTokens ? { dpop_bound_access_tokens: true } : {}),
      redirect_uris: [...c.redirectUris],
      post_logout_redirect_uris: [...(c.postLogoutRedirectUris ?? [])],
      grant_types: [
        'authorization_code',
        'refresh_token',
        'client_credentials',
        ...(options.tokenExchange ? EXCHANGE_GRANT_TYPES : []),
      ],
      response_types: ['code'],
      scope: [...SCOPES, ...(options.extraScopes ?? [])].join(' '),
      token_endpoint_auth_method: c.tokenEndpointAuthMethod ?? 'client_secret_basic',
      ...mtlsClientMetadata(c),
      ...(c.idTokenSignedResponseAlg ? { id_token_signed_response_alg: c.idTokenSignedResponseAlg } : {}),
      ...quirkClientMetadata(quirks),
      ...(c.backchannelLogoutUri
        ? { backchannel_logout_uri: c.backchannelLogoutUri, backchannel_logout_session_required: true }
        : {}),
    })),
    scopes: [...SCOPES, ...(options.extraScopes ?? [])],
    ...(options.discovery ? { discovery: { ...options.discovery } } : {}),
    ...(options.clientAuthMethods
      ? { clientAuthMethods: [...options.clientAuthMethods] as Configuration['clientAuthMethods'] }
      : options.mtls
        ? { clientAuthMethods: MTLS_AUTH_METHODS }
        : {}),
    ...(options.signingKey ? { jwks: { keys: [options.signingKey].flat() } } : {}),
    claims: { openid: ['sub', 'sid'], profile: ['name', 'locale'] },
    cookies: {
      keys: ['gatehouse-dev-idp-cookie-key-not-secret'],
      // oidc-provider takes POSTs only with its session cookie SameSite=None
      // (see `endSessionPost`); on plain http it is sent Lax instead, below.
      ...(options.endSessionPost ? { long: { httpOnly: true, sameSite: 'none' as const } } : {}),
    },
    ...(options.endSessionPost ? { enableHttpPostMethods: true } : {}),
    clockTolerance: 5,
    ...(options.dpopAlgorithms ? { enabledJWA: { dPoPSigningAlgValues: [...options.dpopAlgorithms] } } : {}),
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      clientCredentials: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
      // Off by default, so a client-credentials request with a plain `scope` gets an opaque token.
      resourceIndicators: resourceIndicatorsFeature(options.resourceIndicators, accessTokenTtl),
      pushedAuthorizationRequests: { enabled: options.par ?? false },
      // On by default in oidc-provider; a nonce needs a secret to make it from.
      dPoP: {
        enabled: options.dpop ?? true,
        ...(options.dpopNonce ? { nonceSecret: randomBytes(32), requireNonce: () => true } : {}),
      },
      userinfo: { enabled: options.userinfo ?? true },
      mTLS: mtlsFeature(options.mtls),
      ...(options.fapi ? { fapi: { enabled: true, profile: '2.0' as const } } : {}),
      ...quirkFeatures(quirks),
    },
    pkce: { required: () => true },
    // oidc-provider's SSRF guard (its own undici dispatcher) refuses loopback
    // targets; a dev IdP's back-channel logout goes exactly there, to the local gateway.
    fetch: (input, init) => {
      const { dispatcher: _guard, ...rest } = (init ?? {}) as RequestInit & { dispatcher?: unknown }
      return fetch(input, rest)
    },
    conformIdTokenClaims: options.profileClaims === 'userinfo',
    ...(options.tokenExchange ? { extraTokenClaims: exchangeClaims } : {}),
    // RFC 9700 §4.14.2: rotated refresh tokens are single-use.
    rotateRefreshToken: true,
    // Strict leaves oidc-provider's default: a refresh token only for a
    // granted offline_access, which OIDC Core §11 grants only with prompt=consent.
    ...(lenient
      ? { issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token') }
      : {}),
    ttl: {
      AccessToken: accessTokenTtl,
      ClientCredentials: options.clientCredentialsTtl ?? accessTokenTtl,
      RefreshToken: options.refreshTokenTtl ?? 86_400,
      IdToken: options.idTokenTtl ?? 3600,
      Grant: 86_400,
      Session: 86_400,
      Interaction: 600,
    },
    async findAccount(_ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            name: sub.charAt(0).toUpperCase() + sub.slice(1),
            locale: 'en-GB',
            ...options.accountClaims?.(sub),
          }
        },
      }
    },
    // Lenient implies consent, as Keycloak does for clients without
    // "consent required"; strict keeps oidc-provider's consent page.
    ...(lenient ? { loadExistingGrant: impliedConsent } : {}),
    ...quirkConfiguration(quirks),
  }

  const provider = new Provider(issuer, configuration)
  provider.use(quirkMiddleware(quirks))
  let advertised: Readonly<Record<string, unknown>> | undefined
  provider.use(async (ctx, next) => {
    await next()
    if (advertised && ctx.oidc?.route === 'discovery' && ctx.status === 200)
      ctx.body = { ...(ctx.body as Record<string, unknown>), ...advertised }
  })
  const stats = emptyStats()
  if (options.tokenExchange) registerExchangeGrants(provider, options.tokenExchange, stats)
  // Opaque refresh tokens are their own id, so the values rotated away are
  // exactly the replays to watch for, whatever error the provider gives them.
  const rotatedAway = new Set<string>()
  const sessions = new Set<string>()

  provider.on('refresh_token.consumed', (token: { jti: string }) => {
    rotatedAway.add(token.jti)
  })
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const grantType = (ctx.oidc.params as TokenParams | undefined)?.grant_type
    if (grantType === 'refresh_token') stats.refreshGrants++
    else if (grantType === 'authorization_code') stats.authorizationCodeGrants++
    else if (grantType === 'client_credentials') stats.clientCredentialsGrants++
  })
  provider.on('grant.error', (ctx: KoaContextWithOIDC, err: { error?: string }) => {
    stats.grantErrors++
    if (err?.error === 'use_dpop_nonce') stats.dpopNonceChallenges++
    const params = ctx.oidc?.params as TokenParams | undefined
    // The first replay fails with 'refresh token already used' and revokes
    // the grant, which destroys the token; later ones fail 'refresh token
    // not found'. Both are replays.
    if (
      params?.grant_type === 'refresh_token' &&
      params.refresh_token &&
      rotatedAway.has(params.refresh_token)
    ) {
      stats.refreshReplays++
    }
  })
  provider.on('grant.revoked', () => {
    stats.revokedGrants++
  })
  provider.on('session.saved', (session: { jti: string }) => {
    sessions.add(session.jti)
  })
  provider.on('session.destroyed', (session: { jti: string }) => {
    sessions.delete(session.jti)
  })

  let delay: number | (() => number) = options.tokenEndpointDelayMs ?? 0
  let answerDelay = 0
  let answerGate: (() => Promise<void>) | undefined
  let requestGate: (() => Promise<void>) | undefined
  let fault: FaultMode = 'ok'
  const canned = new Map<string, CannedAnswer>()
  const cannedPaths: Record<CannedEndpoint, string> = {
    token: '/token',
    revocation: '/token/revocation',
    par: '/request',
    userinfo: '/me',
    jwks: '/jwks',
  }
  const handle = provider.callback()
  const backChannel = (path: string) =>
    path.startsWith('/token') || path.startsWith('/.well-known/') || path.startsWith('/jwks')
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!
    if (options.neighbour && path.startsWith(options.neighbour.prefix)) {
      options.neighbour.handle(req, res)
      return
    }
    const isToken = path === '/token' && req.method === 'POST'
    if (isToken) {
      stats.tokenRequests++
      if (req.headers.dpop !== undefined) stats.dpopTokenRequests++
    }
    if (fault !== 'ok' && backChannel(path)) {
      if (fault === '503') {
        res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' }).end('unavailable')
      } else if (fault === 'reset') {
        req.socket.destroy()
      } else if (fault === 'flood') {
        flood(res, stats)
      }
      // 'hang': never answer; the client's timeout must fire. close() ends the socket.
      return
    }
    if (path === '/token/revocation' && req.method === 'POST') {
      res.on('finish', () => {
        if (res.statusCode === 200) stats.revocations++
      })
    }
    if (path === '/me' && options.userinfoSubject) rewriteSubject(res, options.userinfoSubject)
    if (path === '/me' && options.userinfoOverrides) overwriteUserinfo(res, options.userinfoOverrides)
    if (options.endSessionPost) sameSiteLaxOverHttp(res)
    if (isToken && options.refreshExpiresIn !== undefined && options.refreshExpiresIn !== false)
      reportRefreshExpiry(res, provider, options.refreshExpiresIn)
    if (isToken && answerDelay > 0) heldBack(res, answerDelay)
    if (isToken && answerGate) heldUntil(res, answerGate)
    const ms = typeof delay === 'function' ? delay() : delay
    const refused = options.resourceIndicators?.refusedAtTokenEndpoint ?? []
    const cannedAnswer = canned.get(path)
    const serve = () =>
      (isToken && refused.length > 0) || cannedAnswer
        ? atTheEdge(req, res, handle, (params) => {
            if (
              cannedAnswer &&
              (!cannedAnswer.grantType || params.get('grant_type') === cannedAnswer.grantType)
            )
              return cannedAnswer
            if (isToken && params.getAll('resource').some((r) => refused.includes(r))) {
              return {
                status: 400,
                body: { error: 'invalid_target', error_description: 'resource refused by policy' },
              }
            }
            return undefined
          })
        : handle(req, res)
    const held = isToken ? requestGate : undefined
    const after = held === undefined ? serve : () => void held().then(serve, serve)
    if (isToken && ms > 0) {
      setTimeout(after, ms)
      return
    }
    after()
  })

  async function findToken(token: string) {
    return (
      (await provider.AccessToken.find(token)) ??
      (await provider.ClientCredentials.find(token)) ??
      (await provider.RefreshToken.find(token))
    )
  }

  async function introspect(token: string): Promise<Introspection> {
    const found = await findToken(token)
    if (!found || found.isExpired || ('consumed' in found && found.consumed)) return { active: false }
    return {
      active: true,
      token_type: found.kind,
      client_id: found.clientId,
      scope: found.scope,
      exp: found.exp,
      iat: found.iat,
      ...('aud' in found && found.aud ? { aud: found.aud } : {}),
      ...('accountId' in found && found.accountId ? { sub: found.accountId } : {}),
    }
  }

  async function revokeGrant(grantId: string) {
    await Promise.all([
      provider.AccessToken.revokeByGrantId(grantId),
      provider.RefreshToken.revokeByGrantId(grantId),
      provider.AuthorizationCode.revokeByGrantId(grantId),
      provider.Grant.adapter.destroy(grantId),
    ])
    stats.revokedGrants++
  }

  async function endSession(sub?: string): Promise<EndSessionResult> {
    let ended = 0
    let delivered = 0
    let failed = 0
    for (const jti of [...sessions]) {
      const stored = (await provider.Session.adapter.find(jti)) as StoredSession | undefined
      if (!stored) {
        sessions.delete(jti)
        continue
      }
      if (!stored.accountId || (sub !== undefined && stored.accountId !== sub)) continue
      for (const [clientId, { sid, grantId }] of Object.entries(stored.authorizations ?? {})) {
        const client = await provider.Client.find(clientId)
        // OpenID Connect Back-Channel Logout 1.0 §2.5: one logout token per RP, with the sid it was given.
        if (client?.backchannelLogoutUri) {
          try {
            await (client as unknown as BackchannelClient).backchannelLogout(stored.accountId, sid ?? '')
            delivered++
            stats.backchannelLogouts++
          } catch {
            failed++
            stats.backchannelLogoutErrors++
          }
        }
        if (grantId) await revokeGrant(grantId)
      }
      await provider.Session.adapter.destroy(jti)
      sessions.delete(jti)
      ended++
    }
    return { sessions: ended, delivered, failed }
  }

  const setDown = (mode: FaultMode) => {
    fault = mode
  }

  return {
    issuer,
    stats,
    provider,
    resetStats: () => Object.assign(stats, emptyStats()),
    setTokenEndpointDelay(ms) {
      delay = ms
    },
    setTokenAnswerDelay(ms) {
      answerDelay = ms
    },
    holdTokenAnswers(gate) {
      answerGate = gate
    },
    holdTokenRequests(gate) {
      requestGate = gate
    },
    setDown,
    setFault: setDown,
    answer(endpoint, answer) {
      if (answer) canned.set(cannedPaths[endpoint], answer)
      else canned.delete(cannedPaths[endpoint])
    },
    advertise(members) {
      advertised = members && { ...members }
    },
    async forgetRefreshToken(token) {
      const found = await provider.RefreshToken.find(token, { ignoreExpiration: true })
      await found?.destroy()
    },
    async expireClientSecret(clientId, expired = true) {
      // A static client is one cached instance, which every request finds:
      // its metadata, changed there, is what the next authentication checks.
      const client = await provider.Client.find(clientId)
      if (!client) throw new Error(`the dev IdP has no client ${clientId}`)
      // Epoch seconds; 0 is "never" (RFC 7591 §3.2.1).
      Object.assign(client, { clientSecretExpiresAt: expired ? 1 : 0 })
    },
    introspect,
    isActive: async (accessToken) => {
      const result = await introspect(accessToken)
      return result.active && result.token_type !== 'RefreshToken'
    },
    async describe(accessToken) {
      const { active, token_type, iat: _iat, ...described } = await introspect(accessToken)
      return active && token_type !== 'RefreshToken' ? described : undefined
    },
    endSession,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

function resourceIndicatorsFeature(
  indicators: DevResourceIndicators | undefined,
  accessTokenTtl: number,
): NonNullable<NonNullable<Configuration['features']>['resourceIndicators']> {
  if (!indicators) return { enabled: false }
  return {
    enabled: true,
    // A login asks for several resources; its own access token stays the
    // userinfo one, and each resource's comes from a refresh with `resource`.
    defaultResource: (_ctx, _client, requested) => requested,
    useGrantedResource: () => false,
    getResourceServerInfo(_ctx, resource) {
      const server = indicators.resources[resource]
      if (!server) throw new errors.InvalidTarget()
      return {
        scope: (server.scopes ?? []).join(' '),
        audience: resource,
        accessTokenTTL: accessTokenTtl,
        accessTokenFormat: server.format ?? 'opaque',
        ...(server.format === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
      }
    },
  }
}
