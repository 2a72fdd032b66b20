/**
 * A DEVELOPMENT-ONLY OpenID Provider: panva's oidc-provider with its dev
 * login form, where any user name signs in. `npm run demo` and the test
 * suite use it; never put it in front of real users.
 *
 * It rotates refresh tokens and revokes the grant when a used one comes
 * back, like production IdPs, and counts what it saw so tests can assert
 * "exactly one refresh" and "zero replays".
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider'

export interface DevClient {
  readonly clientId: string
  readonly clientSecret: string
  readonly redirectUris: readonly string[]
  readonly postLogoutRedirectUris?: readonly string[]
  readonly backchannelLogoutUri?: string
  readonly tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post'
}

export interface DevIdpOptions {
  readonly port?: number
  readonly host?: string
  readonly clients: readonly DevClient[]
  /** Seconds. */
  readonly accessTokenTtl?: number
  readonly clientCredentialsTtl?: number
  readonly refreshTokenTtl?: number
}

export type FaultMode = 'ok' | '503' | 'reset' | 'hang'

export interface IdpStats {
  refreshGrants: number
  /** Refresh tokens presented after they were rotated away: each revokes a grant. */
  refreshReplays: number
  authorizationCodeGrants: number
  clientCredentialsGrants: number
  grantErrors: number
  revokedGrants: number
  revocations: number
}

export interface DevIdp {
  readonly issuer: string
  readonly stats: IdpStats
  readonly provider: Provider
  resetStats(): void
  /** Adds latency to every token-endpoint call. */
  setTokenEndpointDelay(ms: number): void
  /** Makes the back-channel endpoints (discovery, token, revocation) fail in the given way. */
  setFault(mode: FaultMode): void
  /** Whether the provider still accepts this access token. */
  isActive(accessToken: string): Promise<boolean>
  /** What the provider knows of a live token: expiry, subject, client and scope. */
  describe(accessToken: string): Promise<Record<string, unknown> | undefined>
  close(): Promise<void>
}

const SCOPES = ['openid', 'profile', 'offline_access', 'orders.read', 'reports.read']

function emptyStats(): IdpStats {
  return {
    refreshGrants: 0,
    refreshReplays: 0,
    authorizationCodeGrants: 0,
    clientCredentialsGrants: 0,
    grantErrors: 0,
    revokedGrants: 0,
    revocations: 0,
  }
}

export async function startDevIdp(options: DevIdpOptions): Promise<DevIdp> {
  const host = options.host ?? '127.0.0.1'
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve))
  const { port } = server.address() as AddressInfo
  const issuer = `http://${host}:${port}`

  const configuration: Configuration = {
    clients: options.clients.map((c) => ({
      client_id: c.clientId,
      client_secret: c.clientSecret,
      redirect_uris: [...c.redirectUris],
      post_logout_redirect_uris: [...(c.postLogoutRedirectUris ?? [])],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      scope: SCOPES.join(' '),
      token_endpoint_auth_method: c.tokenEndpointAuthMethod ?? 'client_secret_basic',
      ...(c.backchannelLogoutUri
        ? { backchannel_logout_uri: c.backchannelLogoutUri, backchannel_logout_session_required: true }
        : {}),
    })),
    scopes: SCOPES,
    claims: { openid: ['sub', 'sid'], profile: ['name'] },
    cookies: { keys: ['gatehouse-dev-idp-cookie-key-not-secret'] },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      clientCredentials: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
      resourceIndicators: { enabled: false },
    },
    pkce: { required: () => true },
    // Put profile claims in the ID token, as most production IdPs do.
    conformIdTokenClaims: false,
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      AccessToken: options.accessTokenTtl ?? 60,
      ClientCredentials: options.clientCredentialsTtl ?? options.accessTokenTtl ?? 60,
      RefreshToken: options.refreshTokenTtl ?? 86_400,
      IdToken: 3600,
      Grant: 86_400,
      Session: 86_400,
      Interaction: 600,
    },
    async findAccount(_ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub, name: sub.charAt(0).toUpperCase() + sub.slice(1) }
        },
      }
    },
    // Consent is implied: a dev IdP that asks "allow?" on every login only
    // slows tests and demos down.
    async loadExistingGrant(ctx: KoaContextWithOIDC) {
      const accountId = ctx.oidc.session?.accountId
      if (!accountId || !ctx.oidc.client) return undefined
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId })
      grant.addOIDCScope(SCOPES.join(' '))
      grant.addOIDCClaims(['sub', 'sid', 'name'])
      await grant.save()
      return grant
    },
  }

  const provider = new Provider(issuer, configuration)
  const stats = emptyStats()
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const grantType = (ctx.oidc.params as { grant_type?: string } | undefined)?.grant_type
    if (grantType === 'refresh_token') stats.refreshGrants++
    else if (grantType === 'authorization_code') stats.authorizationCodeGrants++
    else if (grantType === 'client_credentials') stats.clientCredentialsGrants++
  })
  provider.on('grant.error', (_ctx: KoaContextWithOIDC, err: { error_detail?: string }) => {
    stats.grantErrors++
    if (err.error_detail === 'refresh token already used') stats.refreshReplays++
  })
  provider.on('grant.revoked', () => {
    stats.revokedGrants++
  })

  let delay = 0
  let fault: FaultMode = 'ok'
  const handle = provider.callback()
  const backChannel = (url: string) =>
    url.startsWith('/token') || url.startsWith('/.well-known/') || url.startsWith('/jwks')
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/'
    if (fault !== 'ok' && backChannel(url)) {
      if (fault === '503') {
        res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' }).end('unavailable')
      } else if (fault === 'reset') {
        req.socket.destroy()
      }
      // 'hang': never answer; the client's timeout must fire.
      return
    }
    if (url.startsWith('/token/revocation') && req.method === 'POST') {
      res.on('finish', () => {
        if (res.statusCode === 200) stats.revocations++
      })
    }
    if (delay > 0 && url.startsWith('/token') && req.method === 'POST') {
      setTimeout(() => handle(req, res), delay)
      return
    }
    handle(req, res)
  })

  return {
    issuer,
    stats,
    provider,
    resetStats: () => Object.assign(stats, emptyStats()),
    setTokenEndpointDelay(ms) {
      delay = ms
    },
    setFault(mode) {
      fault = mode
    },
    async isActive(accessToken) {
      const found =
        (await provider.AccessToken.find(accessToken)) ?? (await provider.ClientCredentials.find(accessToken))
      return found !== undefined && !found.isExpired
    },
    async describe(accessToken) {
      const found =
        (await provider.AccessToken.find(accessToken)) ?? (await provider.ClientCredentials.find(accessToken))
      if (!found || found.isExpired) return undefined
      return {
        exp: found.exp,
        sub: 'accountId' in found ? found.accountId : undefined,
        client_id: found.clientId,
        scope: found.scope,
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
