import { exportJWK, generateKeyPair, type JWTPayload } from 'jose'
import type { Test } from 'tap'
import { type DevIdp, type DevIdpOptions, startDevIdp } from '../../dev/idp.js'
import { type EchoUpstream, startEchoUpstream } from '../../dev/upstream.js'
import { buildGateway, type GatewayOptions } from '../../src/server/gateway.js'
import { createRedisStores } from '../../src/server/redis-stores.js'
import { refreshTokenOf } from './app.js'
import {
  CLIENT_ID,
  CLIENT_SECRET,
  listenOn,
  route,
  type TestConfigInput,
  type TestRoute,
  testConfig,
} from './gateway.js'
import { login } from './login.js'
import { HELD_LOGOUT_CARRIED_OUT, postLogoutToken, signLogoutToken } from './logout.js'
import { onFreePorts } from './ports.js'
import { LogLines } from './reloadable.js'

/** The resource server of `/api/partner-reports`, which only the partner IdP knows (RFC 8707). */
export const PARTNER_REPORTS = 'https://reports.partner.example'

/** One of the two providers: its dev IdP, the API only its sessions may call, and a logout-token minter. */
export interface TwoIdpProvider {
  readonly name: 'corp' | 'partner'
  readonly idp: DevIdp
  /** The upstream of `/api/<name>`, a route restricted to this provider. */
  readonly api: EchoUpstream
  /** A logout token as this IdP would sign it (its own key, issuer and our client id). */
  logoutToken(claims: JWTPayload): Promise<string>
}

export interface TwoIdps {
  readonly corp: TwoIdpProvider
  readonly partner: TwoIdpProvider
  /** `/api/any`'s upstream: a route every provider's sessions may call. */
  readonly shared: EchoUpstream
  /** `/api/partner-reports`'s upstream: partner sessions only, with a token for `PARTNER_REPORTS`. */
  readonly partnerReports: EchoUpstream
  readonly urls: readonly string[]
  readonly apps: readonly Awaited<ReturnType<typeof buildGateway>>[]
  close(): Promise<void>
}

export interface TwoIdpOptions {
  /** `session.store`; default memory (then one gateway). */
  readonly store?: string
  readonly keyPrefix?: string
  /** Gateways on the store; default 1. */
  readonly count?: number
  /** Seconds; default 60. */
  readonly accessTokenTtl?: number
  readonly config?: Partial<TestConfigInput>
  readonly gateway?: GatewayOptions
  /** Options of both IdPs beyond the TTL and the signing key. */
  readonly idp?: Partial<Omit<DevIdpOptions, 'clients' | 'signingKey'>>
  /**
   * Where each IdP posts its logout tokens: the shared path, or its own
   * (`/auth/backchannel-logout/<name>`). Default: none registered.
   */
  readonly backchannel?: 'shared' | 'own'
  /** Routes after the three, given the shared upstream's URL (`token: exchange` routes, say). */
  readonly routes?: (shared: string) => TestRoute[]
}

/**
 * Two real dev IdPs ("corp" and "partner", each the project's oidc-provider
 * with a signing key of its own), the same client id registered at both,
 * and gateways configured with `identityProviders: [corp, partner]` and
 * routes `/api/corp` (corp only), `/api/partner` (partner only),
 * `/api/partner-reports` (partner only, a per-resource token from partner)
 * and `/api/any`. Users are the same names at both IdPs, so `sub`s collide
 * as they do between real providers. Closed when `t` ends.
 */
export async function startTwoIdps(t: Test, options: TwoIdpOptions = {}): Promise<TwoIdps> {
  const apis = { corp: await startEchoUpstream(), partner: await startEchoUpstream() }
  const shared = await startEchoUpstream()
  const partnerReports = await startEchoUpstream()
  const keys = {
    corp: await generateKeyPair('RS256', { extractable: true }),
    partner: await generateKeyPair('RS256', { extractable: true }),
  }
  const count = options.count ?? 1
  const started = await onFreePorts(count, async (ports) => {
    const publicUrl = `http://127.0.0.1:${ports[0]}`
    const idps: Partial<Record<'corp' | 'partner', DevIdp>> = {}
    const apps: Awaited<ReturnType<typeof buildGateway>>[] = []
    try {
      for (const name of ['corp', 'partner'] as const) {
        const jwk = {
          ...(await exportJWK(keys[name].privateKey)),
          kid: `${name}-key`,
          alg: 'RS256',
          use: 'sig',
        }
        const backchannelLogoutUri =
          options.backchannel === 'shared'
            ? `${publicUrl}/auth/backchannel-logout`
            : options.backchannel === 'own'
              ? `${publicUrl}/auth/backchannel-logout/${name}`
              : undefined
        idps[name] = await startDevIdp({
          accessTokenTtl: options.accessTokenTtl ?? 60,
          ...options.idp,
          signingKey: jwk,
          ...(name === 'partner'
            ? {
                // Beside the caller's resources, which the partner's sessions may ask for too.
                resourceIndicators: {
                  ...options.idp?.resourceIndicators,
                  resources: {
                    ...options.idp?.resourceIndicators?.resources,
                    [PARTNER_REPORTS]: { scopes: ['reports.read'] },
                  },
                },
              }
            : {}),
          clients: [
            {
              clientId: CLIENT_ID,
              clientSecret: CLIENT_SECRET,
              redirectUris: [`${publicUrl}/auth/callback/${name}`],
              postLogoutRedirectUris: [`${publicUrl}/`],
              ...(backchannelLogoutUri ? { backchannelLogoutUri } : {}),
            },
          ],
        })
      }
      for (const port of ports) {
        const config = testConfig({
          port,
          publicUrl,
          issuer: idps.corp!.issuer,
          ...(options.store ? { store: options.store } : {}),
          ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}),
          identityProviders: [
            { name: 'corp', issuer: idps.corp!.issuer },
            // RFC 6749 §6: a refresh may ask only for scopes the login was granted.
            {
              name: 'partner',
              issuer: idps.partner!.issuer,
              scopes: ['openid', 'profile', 'offline_access', 'reports.read'],
            },
          ],
          routes: [
            route('/api/corp', apis.corp.url, { identityProviders: ['corp'] }),
            route('/api/partner', apis.partner.url, { identityProviders: ['partner'] }),
            route('/api/any', shared.url),
            route('/api/partner-reports', partnerReports.url, {
              identityProviders: ['partner'],
              resource: PARTNER_REPORTS,
              scopes: ['reports.read'],
            }),
            ...(options.routes?.(shared.url) ?? []),
          ],
          ...options.config,
        })
        const stores = options.store ? await createRedisStores(config, Date.now) : undefined
        const app = await buildGateway(config, { ...(stores ? { stores } : {}), ...options.gateway })
        await listenOn(app, port)
        apps.push(app)
        await app.gatehouse.whenDiscovered()
      }
      return { idps: idps as Record<'corp' | 'partner', DevIdp>, apps, ports }
    } catch (err) {
      for (const app of apps) await app.close()
      for (const idp of Object.values(idps)) await idp.close()
      throw err
    }
  })
  const { idps, apps, ports } = started
  const provider = (name: 'corp' | 'partner'): TwoIdpProvider => ({
    name,
    idp: idps[name],
    api: apis[name],
    logoutToken: (claims) =>
      signLogoutToken(
        { issuer: idps[name].issuer, audience: CLIENT_ID, key: keys[name].privateKey, kid: `${name}-key` },
        claims,
      ),
  })
  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= (async () => {
      for (const app of apps) await app.close()
      for (const upstream of [apis.corp, apis.partner, shared, partnerReports]) await upstream.close()
      await idps.corp.close()
      await idps.partner.close()
    })()
    return closing
  }
  t.teardown(close)
  return {
    corp: provider('corp'),
    partner: provider('partner'),
    shared,
    partnerReports,
    urls: ports.map((p) => `http://127.0.0.1:${p}`),
    apps,
    close,
  }
}

/**
 * `startTwoIdps` with both IdPs posting their logout tokens to the shared
 * path of one gateway, which logs at `info` into `log`; `post` delivers a
 * logout token there as an IdP would.
 */
export async function startTwoIdpsPostingLogouts(t: Test, config: Partial<TestConfigInput> = {}) {
  const log = new LogLines()
  const set = await startTwoIdps(t, {
    backchannel: 'shared',
    config: { logLevel: 'info', ...config },
    gateway: { logStream: log.stream },
  })
  const base = set.urls[0]!
  const post = (token: string) => postLogoutToken(base, token)
  return {
    ...set,
    log,
    base,
    post,
    /**
     * Posts `sub`'s logout token from `provider` while its JWKS fails that
     * one fetch, an outage as brief as any, then lets the JWKS answer again;
     * resolves to the gateway's answer (503: the token is held).
     */
    async postWhileJwksFailsOnce(provider: TwoIdpProvider, sub: string) {
      provider.idp.answer('jwks', { status: 503, body: 'busy', headers: { 'retry-after': '1' } })
      const answer = await post(await provider.logoutToken({ sub }))
      provider.idp.answer('jwks')
      return answer
    },
    /** The line of `idp`'s held logout token carried out, within 20 s. */
    carriedOut: (idp: 'corp' | 'partner') =>
      log.seen(
        `${idp}'s logout carried out`,
        (l) => l.msg === HELD_LOGOUT_CARRIED_OUT && l.idp === idp,
        20_000,
      ),
  }
}

/** `user` signed in through `idp` at the set's first gateway: the browser, and the refresh token its session holds. */
export async function signInHoldingRefreshToken(set: TwoIdps, user: string, idp: 'corp' | 'partner') {
  const base = set.urls[0]!
  const { jar } = await login(base, { user, params: { idp } })
  return { jar, token: await refreshTokenOf(set.apps[0]!, jar.get(base, 'gatehouse')!) }
}
