import { type DevClient, type DevIdp, type DevIdpOptions, startDevIdp } from '../../dev/idp.js'
import { type EchoUpstream, startEchoUpstream } from '../../dev/upstream.js'
import type { GatehouseConfig, RouteConfig } from '../../src/config/types.js'
import type { GatewayOptions } from '../../src/server/gateway.js'
import {
  CLIENT_ID,
  CLIENT_SECRET,
  freePort,
  route,
  startGateway,
  type TestConfigInput,
  type TestGateway,
  testConfig,
} from './gateway.js'

export interface Stack {
  readonly idp: DevIdp
  readonly upstream: EchoUpstream
  readonly gateway: TestGateway
  readonly config: GatehouseConfig
  close(): Promise<void>
}

export interface StackOptions {
  readonly accessTokenTtl?: number
  readonly routes?: (upstream: string) => RouteConfig[]
  readonly config?: Partial<TestConfigInput>
  readonly gateway?: GatewayOptions
  /** IdP options beyond the access-token TTL; the default profile is `strict`. */
  readonly idp?: Partial<Omit<DevIdpOptions, 'clients'>>
  /** Registration of the gateway's client beyond its id and redirect URIs. */
  readonly client?: Partial<Omit<DevClient, 'clientId' | 'redirectUris' | 'postLogoutRedirectUris'>>
  /** Register the gateway's back-channel logout endpoint with the IdP. */
  readonly backchannelLogout?: boolean
}

/** The default routes: a user route, an optional-user route, a client route and a public one. */
export function defaultRoutes(upstream: string): RouteConfig[] {
  return [
    route('/api/orders', upstream, { rewritePath: '/v1/orders' }),
    route('/api/maybe', upstream, { token: 'optional-user' }),
    route('/api/reports', upstream, { token: 'client', scopes: ['reports.read'] }),
    route('/api/public', upstream, { token: 'none' }),
  ]
}

/**
 * A real IdP (strict unless `idp.profile` says otherwise), an echo upstream
 * and a gateway wired to both, on loopback.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const port = await freePort()
  const publicUrl = `http://127.0.0.1:${port}`
  const idp = await startDevIdp({
    accessTokenTtl: options.accessTokenTtl ?? 60,
    ...options.idp,
    clients: [
      {
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        ...options.client,
        redirectUris: [`${publicUrl}/auth/callback`],
        postLogoutRedirectUris: [`${publicUrl}/`],
        ...(options.backchannelLogout && { backchannelLogoutUri: `${publicUrl}/auth/backchannel-logout` }),
      },
    ],
  })
  const upstream = await startEchoUpstream()
  const config = testConfig({
    port,
    issuer: idp.issuer,
    routes: (options.routes ?? defaultRoutes)(upstream.url),
    ...options.config,
  })
  const gateway = await startGateway(config, options.gateway)
  return {
    idp,
    upstream,
    gateway,
    config,
    async close() {
      await gateway.close()
      await upstream.close()
      await idp.close()
    },
  }
}
