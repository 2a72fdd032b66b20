import type { FastifyInstance } from 'fastify'
import { parseStore } from '../../src/config/store-url.js'
import type { GatehouseConfig, RouteConfig, StoreConfig } from '../../src/config/types.js'
import { buildGateway, type GatewayOptions } from '../../src/server/gateway.js'

export const CLIENT_ID = 'gatehouse-test'
export const CLIENT_SECRET = 'test-client-secret-that-is-long-enough'
export const SESSION_SECRET = 'a-session-secret-of-at-least-32-characters!'

/** Listens on `port`, closing the app (its stores and timers) when the port is taken. */
export async function listenOn(app: FastifyInstance, port: number): Promise<void> {
  try {
    await app.listen({ host: '127.0.0.1', port })
  } catch (err) {
    await app.close()
    throw err
  }
}

export function route(path: string, upstream: string, extra: Partial<RouteConfig> = {}): RouteConfig {
  return {
    path,
    upstream,
    rewritePath: path,
    token: 'user',
    scopes: [],
    retryOnInvalidToken: true,
    csrf: true,
    anonymous: false,
    timeout: 5_000,
    bodyLimit: 1024 * 1024,
    allowClearSiteData: false,
    passHeaders: [],
    ...extra,
  }
}

export interface TestConfigInput {
  readonly port: number
  readonly issuer: string
  readonly routes: readonly RouteConfig[]
  readonly store?: string
  readonly refreshBefore?: number
  readonly refreshWait?: number
  readonly idpTimeout?: number
  readonly secrets?: readonly string[]
  readonly idleTimeout?: number
  readonly absoluteTimeout?: number
  readonly keyPrefix?: string
  readonly maxSessions?: number
  readonly localCache?: number
  readonly logLevel?: GatehouseConfig['logging']['level']
  readonly accessLog?: boolean
  readonly rateLimitMax?: number
  readonly trustProxy?: boolean
  /**
   * Overrides of the `oidc` block. The default `authorizationParams` is
   * `{ prompt: 'consent' }`: the test IdP is strict (OIDC Core §11), so that
   * is what a working deployment against it carries.
   */
  readonly oidc?: Partial<GatehouseConfig['oidc']>
  readonly claims?: readonly string[]
  readonly loginParams?: readonly string[]
}

/** What a strict OP needs before it honours offline_access (OIDC Core §11). */
export const STRICT_OP_PARAMS: Readonly<Record<string, string>> = { prompt: 'consent' }

/** A resolved config as `loadConfig` would return it, for a gateway on loopback. */
export function testConfig(input: TestConfigInput): GatehouseConfig {
  return {
    server: {
      host: '127.0.0.1',
      port: input.port,
      publicUrl: `http://127.0.0.1:${input.port}`,
      secure: false,
      trustProxy: input.trustProxy ?? false,
      headersTimeout: 10_000,
      requestTimeout: 60_000,
      keepAliveTimeout: 72_000,
      maxHeaderSize: 16 * 1024,
    },
    oidc: {
      issuer: input.issuer,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      clientAuth: 'client_secret_basic',
      clientKey: undefined,
      scopes: ['openid', 'profile', 'offline_access'],
      authorizationParams: STRICT_OP_PARAMS,
      userinfo: undefined,
      par: 'auto',
      timeout: input.idpTimeout ?? 3_000,
      connectTimeout: 1_000,
      ...input.oidc,
    },
    session: {
      secrets: input.secrets ?? [SESSION_SECRET],
      store: parseStore(input.store ?? 'memory') as StoreConfig,
      idleTimeout: input.idleTimeout ?? 30 * 60_000,
      absoluteTimeout: input.absoluteTimeout ?? 12 * 3_600_000,
      cookieName: 'gatehouse',
      keyPrefix: input.keyPrefix ?? 'gatehouse:',
      maxSessions: input.maxSessions ?? 100_000,
      localCache: input.localCache ?? 10_000,
      claims: input.claims,
    },
    tokens: { refreshBefore: input.refreshBefore ?? 5_000, refreshWait: input.refreshWait ?? 10_000 },
    auth: {
      basePath: '/auth',
      loginParams: input.loginParams ?? ['prompt', 'login_hint', 'ui_locales', 'acr_values'],
      rateLimit: { max: input.rateLimitMax ?? 1_000, window: 60_000 },
    },
    csrf: { header: 'x-csrf' },
    logging: { level: input.logLevel ?? 'silent', accessLog: input.accessLog ?? false },
    metrics: { enabled: true, host: '127.0.0.1', port: 0 },
    routes: input.routes,
  }
}

export interface TestGateway {
  readonly app: FastifyInstance
  readonly url: string
  close(): Promise<void>
}

/** Builds, listens on the config's port and waits for discovery. */
export async function startGateway(
  config: GatehouseConfig,
  options: GatewayOptions = {},
): Promise<TestGateway> {
  const app = await buildGateway(config, options)
  await listenOn(app, config.server.port)
  await app.gatehouse.whenDiscovered()
  let closing: Promise<void> | undefined
  // Idempotent: a test may close the gateway early and its stack's teardown again.
  const close = () => {
    closing ??= app.close()
    return closing
  }
  return { app, url: config.server.publicUrl, close }
}

/** A clock tests move by hand, so token expiry needs no sleeping. */
export class TestClock {
  #offset = 0
  readonly now = () => Date.now() + this.#offset
  advance(ms: number): void {
    this.#offset += ms
  }
}
