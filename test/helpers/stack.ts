import type { Test } from 'tap'
import { type DevClient, type DevIdp, type DevIdpOptions, startDevIdp } from '../../dev/idp.js'
import { type EchoUpstream, startEchoUpstream } from '../../dev/upstream.js'
import type { GatehouseConfig } from '../../src/config/types.js'
import type { GatewayOptions } from '../../src/server/gateway.js'
import {
  CLIENT_ID,
  CLIENT_SECRET,
  route,
  startGateway,
  type TestConfigInput,
  type TestGateway,
  type TestRoute,
  testConfig,
} from './gateway.js'
import { onFreePorts } from './ports.js'

export interface Stack {
  readonly idp: DevIdp
  readonly upstream: EchoUpstream
  readonly gateway: TestGateway
  readonly config: GatehouseConfig
  /** Closes all three now; otherwise the test's teardown does. */
  close(): Promise<void>
}

export interface StackOptions {
  readonly accessTokenTtl?: number
  /** The routes, given the echo upstream's URL and the IdP (for a route on the IdP's own origin). */
  readonly routes?: (upstream: string, idp: DevIdp) => TestRoute[]
  readonly config?: Partial<TestConfigInput>
  readonly gateway?: GatewayOptions
  /** IdP options beyond the access-token TTL; the default profile is `strict`. */
  readonly idp?: Partial<Omit<DevIdpOptions, 'clients'>>
  /** Registration of the gateway's client beyond its id and redirect URIs. */
  readonly client?: Partial<Omit<DevClient, 'clientId' | 'redirectUris' | 'postLogoutRedirectUris'>>
  /** Register the gateway's back-channel logout endpoint with the IdP. */
  readonly backchannelLogout?: boolean
  /** Wait for the gateway to discover the IdP (default); false for a discovery that cannot succeed. */
  readonly awaitDiscovery?: boolean
}

/** The default routes: a user route, an optional-user route, a client route and a public one. */
export function defaultRoutes(upstream: string): TestRoute[] {
  return [
    route('/api/orders', upstream, { rewritePath: '/v1/orders' }),
    route('/api/maybe', upstream, { token: 'optional-user' }),
    route('/api/reports', upstream, { token: 'client', scopes: ['reports.read'] }),
    route('/api/public', upstream, { token: 'none' }),
  ]
}

/**
 * A real IdP (strict unless `idp.profile` says otherwise), an echo upstream
 * and a gateway wired to both, on loopback, all closed when `t` ends (as
 * fastify/demo's `build(t)` does). `close()` may also be called earlier;
 * the teardown then has nothing left to do.
 */
export async function startStack(t: Test, options: StackOptions = {}): Promise<Stack> {
  const upstream = await startEchoUpstream()
  // The IdP must know the gateway's redirect URI, so the gateway's port is
  // chosen before either starts; onFreePorts picks again if it is taken.
  const { idp, gateway, config } = await onFreePorts(1, async ([port]) => {
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
    const config = testConfig({
      port: port!,
      issuer: idp.issuer,
      routes: (options.routes ?? defaultRoutes)(upstream.url, idp),
      ...options.config,
    })
    try {
      return {
        idp,
        gateway: await startGateway(config, options.gateway, {
          ...(options.awaitDiscovery === false ? { awaitDiscovery: false } : {}),
        }),
        config,
      }
    } catch (err) {
      await idp.close()
      throw err
    }
  }).catch(async (err) => {
    await upstream.close()
    throw err
  })
  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= (async () => {
      await gateway.close()
      await upstream.close()
      await idp.close()
    })()
    return closing
  }
  t.teardown(close)
  return { idp, upstream, gateway, config, close }
}
