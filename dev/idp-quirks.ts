/**
 * The deviations real OpenID Providers show, reproduced on the dev IdP:
 * oidc-provider configured otherwise, or its answers changed by Koa
 * middleware on its own app, never a mock. Each is off unless asked for,
 * so the strict defaults stay the default; each has a test showing what
 * Gatehouse does and what the operator sees (test/oidc/idp-quirks-*.test.ts).
 */
import type { ServerResponse } from 'node:http'
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider'

export interface DevIdpQuirks {
  /**
   * Compare Basic credentials without undoing their form-encoding (RFC 6749
   * §2.3.1 asks for it), as many OPs do: `a%2Db` is then not `a-b`.
   */
  readonly rawBasicCredentials?: boolean
  /** Answer `invalid_request`, not `invalid_grant`, to a refresh token the OP does not know. */
  readonly unknownRefreshTokenInvalidRequest?: boolean
  /** Never rotate refresh tokens (Google, and Keycloak without "Revoke Refresh Token"). */
  readonly noRotation?: boolean
  /** Neither serve nor advertise a revocation endpoint (Entra ID). */
  readonly noRevocation?: boolean
  /** Neither send nor advertise the RFC 9207 `iss` authorization response parameter. */
  readonly noIssParameter?: boolean
  /** Sign ID tokens with HS256, keyed by the client secret (OIDC Core §10.1), and advertise it. */
  readonly hs256IdTokens?: boolean
  /** Answer userinfo with a signed JWT (`application/jwt`, OIDC Core §5.3.2). */
  readonly signedUserinfo?: boolean
  /** Ignore `prompt=none`: show the login page instead of answering `login_required`. */
  readonly promptNoneShowsLogin?: boolean
  /** Token responses without `expires_in` (RFC 6749 §5.1 only recommends it). */
  readonly noExpiresIn?: boolean
  /** `expires_in` as a JSON string, `"60"`, not a number. */
  readonly stringExpiresIn?: boolean
  /** Refresh answers without a `refresh_token`: the old one stays valid (RFC 6749 §6). Implies `noRotation`. */
  readonly noRefreshTokenOnRefresh?: boolean
  /**
   * Refresh answers whose `expires_in` is negative, which a client must
   * refuse: the refresh token was rotated all the same, as any 200 a
   * client refuses after the OP carried the grant out.
   */
  readonly negativeExpiresInOnRefresh?: boolean
  /**
   * Answer a client the token endpoint cannot authenticate (a wrong secret,
   * a method not allowed for it) with `403 {"error":"unauthorized_client"}`,
   * not RFC 6749 §5.2's `401 invalid_client` (Glewlwyd 2.7).
   */
  readonly unauthorizedClientForBadCredentials?: boolean
  /**
   * Answer an end-session request without `id_token_hint` with an empty
   * 200, ending nothing, as Glewlwyd 2.7 does: RP-Initiated Logout 1.0 §2
   * makes the hint optional, and `client_id` names the client without it.
   */
  readonly endSessionNeedsIdTokenHint?: boolean
  /**
   * The `issuer` the discovery document advertises, from the one the OP is
   * reached at: a trailing slash the config lacks, or the internal URL of
   * an OP behind a proxy. OIDC Discovery 1.0 §4.3 says the RP must refuse it.
   */
  readonly advertisedIssuer?: (issuer: string) => string
  /**
   * The discovery document as served, from the one oidc-provider wrote
   * (after `advertisedIssuer`): a hostile or broken OP's values, such as
   * a list that is a string, or control characters in an algorithm name.
   */
  readonly discoveryDocument?: (document: Record<string, unknown>) => Record<string, unknown>
  /**
   * The JWKS as served, from the one oidc-provider wrote, asked at each
   * fetch: an OP that rotates a signing key in while clients hold its
   * previous JWKS.
   */
  readonly jwksDocument?: (jwks: { keys: Record<string, unknown>[] }) => { keys: Record<string, unknown>[] }
  /**
   * Refresh answers without an `id_token`: OIDC Core §12.2 makes it optional
   * there, and the session keeps the login's, which then outlives its `exp`.
   */
  readonly noIdTokenOnRefresh?: boolean
  /**
   * Refresh answers whose ID token names another user (`sub`) than the
   * login's, which OIDC Core §12.2 forbids: an OP that mixes up its grants.
   * Rewritten after oidc-provider issued it, so the refresh token was
   * rotated all the same; its signature no longer matches, which a client
   * that reads it from the token endpoint over TLS need not check (OIDC
   * Core §3.1.3.7).
   */
  readonly otherSubOnRefresh?: boolean
  /**
   * Token answers whose ID token is unsigned (`alg: none`, RFC 7519 §6.1:
   * three parts, the last empty), and `none` listed first in
   * `id_token_signing_alg_values_supported`: an OP configured to send a
   * relying party unsigned ID tokens (LemonLDAP::NG's option), which
   * oidc-provider cannot be. Rewritten after oidc-provider issued the token,
   * so the IdP carried the grant out.
   */
  readonly unsignedIdTokens?: boolean
  /**
   * Token answers whose tokens are made this many bytes long, per grant
   * type (asked at each answer): an IdP whose tokens carry hundreds of
   * groups or roles (Entra ID, Keycloak), or one gone wrong. Each named
   * token is padded after oidc-provider issued it, so the IdP carried the
   * grant out (a refresh token rotated) and no longer knows the token as
   * padded; an ID token stays a JWT, its signature padded, which a client
   * that reads it from the token endpoint over TLS need not check (OIDC
   * Core §3.1.3.7).
   */
  readonly paddedTokens?: (grantType: string) => PaddedTokens | undefined
  /**
   * Text appended to each access token, per grant type (asked at each
   * answer): an OP gone wrong whose token holds what no header carries (a
   * CR LF, a non-ASCII letter). Appended after oidc-provider issued the
   * token, so the IdP carried the grant out (a refresh token rotated).
   */
  readonly accessTokenSuffix?: (grantType: string) => string | undefined
  /**
   * One grant per user and client, whichever IdP session signs the user in,
   * while each IdP session still has its own `sid`: revoking a refresh token
   * then ends every session of the user at that client, as at Keycloak (its
   * revocation detaches the client from each of the user's sessions and
   * revokes all their offline tokens) and at Auth0 with "Refresh Token
   * Revocation Deletes Grant". oidc-provider's own default keeps a grant per
   * IdP session.
   */
  readonly grantPerUser?: boolean
}

/** The length, in bytes, each named token of an answer is padded to. */
export type PaddedTokens = Partial<Record<'access_token' | 'refresh_token' | 'id_token', number>>

/** What the quirks change in oidc-provider's configuration, merged over the dev IdP's own. */
export function quirkConfiguration(quirks: DevIdpQuirks): Partial<Configuration> {
  return {
    ...(quirks.noRotation || quirks.noRefreshTokenOnRefresh ? { rotateRefreshToken: false } : {}),
    ...(quirks.grantPerUser ? { loadExistingGrant: grantOfUser } : {}),
    ...(quirks.hs256IdTokens
      ? { enabledJWA: { idTokenSigningAlgValues: ['HS256', 'RS256', 'PS256', 'ES256', 'EdDSA'] } }
      : {}),
  }
}

/** The grant each user has at each client, per provider: `grantPerUser`. */
const userGrants = new WeakMap<object, Map<string, string>>()

/**
 * oidc-provider's `loadExistingGrant` for `grantPerUser`: the grant the
 * user already has at the client, from any IdP session, before the one of
 * this IdP session (oidc-provider's default). Recorded as it is loaded, so
 * the grant a consent made is the user's from its first use on.
 */
async function grantOfUser(ctx: KoaContextWithOIDC) {
  const { provider, client, session, account, result } = ctx.oidc
  const accountId = account?.accountId ?? session?.accountId
  if (!client || !session || !accountId) return undefined
  let grants = userGrants.get(provider)
  if (!grants) {
    grants = new Map()
    userGrants.set(provider, grants)
  }
  const key = `${client.clientId} ${accountId}`
  const id = result?.consent?.grantId ?? grants.get(key) ?? session.grantIdFor(client.clientId)
  const grant = id === undefined ? undefined : await provider.Grant.find(id)
  if (grant) grants.set(key, grant.jti)
  return grant
}

/** What the quirks change in the client's registration. */
export function quirkClientMetadata(quirks: DevIdpQuirks): Record<string, string> {
  return {
    ...(quirks.hs256IdTokens ? { id_token_signed_response_alg: 'HS256' } : {}),
    ...(quirks.signedUserinfo ? { userinfo_signed_response_alg: 'RS256' } : {}),
  }
}

/** What the quirks turn on or off among oidc-provider's features. */
export function quirkFeatures(quirks: DevIdpQuirks): {
  revocation?: { enabled: boolean }
  jwtUserinfo?: { enabled: boolean }
} {
  return {
    ...(quirks.noRevocation ? { revocation: { enabled: false } } : {}),
    ...(quirks.signedUserinfo ? { jwtUserinfo: { enabled: true } } : {}),
  }
}

type Middleware = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void>

/**
 * The refresh token a `noRefreshTokenOnRefresh` answer left out, by the
 * response it was left out of: the token the client keeps, whose lifetime
 * `refreshExpiresIn` (idp.ts) still reports, as Keycloak reports its SSO
 * idle time on every refresh.
 */
export const keptRefreshTokens = new WeakMap<ServerResponse, string>()

interface TokenBody {
  access_token?: string
  error?: string
  error_description?: string
  expires_in?: unknown
  refresh_token?: string
  id_token?: string
}

/**
 * Koa middleware on oidc-provider's own app (`provider.use`), around its
 * routes: it rewrites a request before oidc-provider reads it, or an answer
 * after oidc-provider wrote it.
 */
export function quirkMiddleware(quirks: DevIdpQuirks): Middleware {
  return async (ctx, next) => {
    if (quirks.rawBasicCredentials) undecodedBasic(ctx)
    if (quirks.promptNoneShowsLogin && ctx.path === '/auth' && ctx.query.prompt === 'none') {
      const query = new URLSearchParams(ctx.querystring)
      query.delete('prompt')
      ctx.querystring = query.toString()
    }
    if (quirks.endSessionNeedsIdTokenHint && ctx.path === '/session/end' && !ctx.query.id_token_hint) {
      ctx.status = 200
      ctx.body = ''
      return
    }
    await next()
    if (quirks.noIssParameter) withoutIss(ctx)
    if (quirks.advertisedIssuer && ctx.path === '/.well-known/openid-configuration' && ctx.status === 200) {
      const body = ctx.body as { issuer: string }
      body.issuer = quirks.advertisedIssuer(body.issuer)
    }
    if (quirks.unsignedIdTokens && ctx.path === '/.well-known/openid-configuration' && ctx.status === 200) {
      const body = ctx.body as { id_token_signing_alg_values_supported: string[] }
      body.id_token_signing_alg_values_supported = ['none', ...body.id_token_signing_alg_values_supported]
    }
    if (quirks.discoveryDocument && ctx.path === '/.well-known/openid-configuration' && ctx.status === 200)
      ctx.body = quirks.discoveryDocument(ctx.body as Record<string, unknown>)
    if (quirks.jwksDocument && ctx.path === '/jwks' && ctx.status === 200)
      ctx.body = quirks.jwksDocument(ctx.body as { keys: Record<string, unknown>[] })
    if (ctx.path !== '/token' || typeof ctx.body !== 'object' || ctx.body === null) return
    const body = ctx.body as TokenBody
    if (quirks.unauthorizedClientForBadCredentials && body.error === 'invalid_client') {
      ctx.remove('www-authenticate')
      ctx.status = 403
      ctx.body = { error: 'unauthorized_client' }
      return
    }
    const grantType = (ctx.oidc?.params as { grant_type?: string } | undefined)?.grant_type
    if (
      quirks.unknownRefreshTokenInvalidRequest &&
      grantType === 'refresh_token' &&
      body.error === 'invalid_grant'
    ) {
      ctx.body = { error: 'invalid_request', error_description: 'Unknown refresh token' }
      return
    }
    if (ctx.status !== 200) return
    if (quirks.noExpiresIn) delete body.expires_in
    if (quirks.stringExpiresIn && typeof body.expires_in === 'number')
      body.expires_in = String(body.expires_in)
    if (quirks.noRefreshTokenOnRefresh && grantType === 'refresh_token' && body.refresh_token) {
      keptRefreshTokens.set(ctx.res, body.refresh_token)
      delete body.refresh_token
    }
    if (quirks.negativeExpiresInOnRefresh && grantType === 'refresh_token') body.expires_in = -5
    if (quirks.noIdTokenOnRefresh && grantType === 'refresh_token') delete body.id_token
    if (quirks.otherSubOnRefresh && grantType === 'refresh_token' && body.id_token)
      body.id_token = withOtherSub(body.id_token)
    if (quirks.unsignedIdTokens && body.id_token) body.id_token = unsigned(body.id_token)
    const padded = quirks.paddedTokens?.(grantType ?? '')
    if (padded) padTokens(body, padded)
    const suffix = quirks.accessTokenSuffix?.(grantType ?? '')
    if (suffix !== undefined && typeof body.access_token === 'string') body.access_token += suffix
  }
}

/** Pads each named token of `body` with `A`s (base64url, so a JWT still decodes) to its length. */
function padTokens(body: TokenBody, padded: PaddedTokens): void {
  for (const [field, bytes] of Object.entries(padded) as [keyof PaddedTokens, number][]) {
    const token = body[field]
    if (typeof token === 'string' && token.length < bytes)
      body[field] = token + 'A'.repeat(bytes - token.length)
  }
}

/** `jwt` with `another-` before its `sub`, its header and signature as they were. */
function withOtherSub(jwt: string): string {
  const [header, payload, signature] = jwt.split('.')
  const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as { sub: string }
  claims.sub = `another-${claims.sub}`
  return [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.')
}

/** `jwt`'s claims as an unsecured JWT (RFC 7519 §6.1): `alg: none` and an empty signature. */
function unsigned(jwt: string): string {
  const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')
  return `${header}.${jwt.split('.')[1] ?? ''}.`
}

/**
 * Re-encodes Basic credentials so that oidc-provider, which decodes them
 * as RFC 6749 §2.3.1 says, ends up with the raw text the client sent:
 * the comparison is then against the form-encoded bytes, as on OPs that
 * never decode.
 */
function undecodedBasic(ctx: KoaContextWithOIDC): void {
  const header = ctx.req.headers.authorization
  if (!header?.toLowerCase().startsWith('basic ')) return
  const raw = Buffer.from(header.slice(6), 'base64').toString('utf8')
  const colon = raw.indexOf(':')
  if (colon === -1) return
  const reencoded = [raw.slice(0, colon), raw.slice(colon + 1)].map(encodeURIComponent).join(':')
  ctx.req.headers.authorization = `Basic ${Buffer.from(reencoded).toString('base64')}`
}

/** RFC 9207 not implemented: no `iss` on the way back, and not advertised. */
function withoutIss(ctx: KoaContextWithOIDC): void {
  if (ctx.path === '/.well-known/openid-configuration' && typeof ctx.body === 'object' && ctx.body) {
    delete (ctx.body as Record<string, unknown>).authorization_response_iss_parameter_supported
    return
  }
  const location = ctx.response.get('location')
  if (!location || !/[?&]iss=/.test(location)) return
  const url = new URL(location)
  url.searchParams.delete('iss')
  ctx.response.set('location', url.href)
}
