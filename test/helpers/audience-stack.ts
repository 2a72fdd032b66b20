import { type DevIdp, type DevTokenExchange, startDevIdp } from '../../dev/idp.js'
import { type EchoUpstream, startEchoUpstream } from '../../dev/upstream.js'
import type { ExchangeConfig, GatehouseConfig, LogLevel, RouteConfig } from '../../src/config/types.js'
import { buildGateway, type GatewayOptions } from '../../src/server/gateway.js'
import { createRedisStores } from '../../src/server/redis-stores.js'
import type { CookieJar } from './cookie-jar.js'
import { CLIENT_ID, CLIENT_SECRET, listenOn, route, testConfig } from './gateway.js'
import { login } from './login.js'
import { onFreePorts } from './ports.js'

export const ORDERS = 'https://orders.example'
export const REPORTS = 'https://reports.example'
/** The audience of the ledger API, which takes only exchanged tokens (RFC 8693). */
export const LEDGER = 'https://ledger.example'

/** `/ledger`'s exchange: the login's access token for a LEDGER token. */
export const LEDGER_EXCHANGE: ExchangeConfig = {
  subjectToken: 'access_token',
  audience: LEDGER,
  scopes: [],
  grant: 'token-exchange',
}

/** The dev IdP's exchange policy in the stack: LEDGER for ledger.read, and nothing else. */
export const STACK_EXCHANGE: DevTokenExchange = { audiences: { [LEDGER]: { scopes: ['ledger.read'] } } }

export interface AudienceStackOptions {
  /** Gateways sharing the store; more than one needs `redisUrl`. Default 1. */
  readonly replicas?: number
  readonly redisUrl?: string
  readonly keyPrefix?: string
  /** Seconds. Default 60. */
  readonly accessTokenTtl?: number
  readonly refreshBefore?: number
  readonly refusedAtTokenEndpoint?: readonly string[]
  /** Upstreams introspect every token and answer 401 invalid_token to an inactive one. */
  readonly rejectInactive?: boolean
  /** Applied to every route. */
  readonly routeOptions?: Partial<Omit<RouteConfig, 'tls'>>
  /** `session.secrets`; the first seals the login's cookie. */
  readonly secrets?: readonly string[]
  readonly gateway?: GatewayOptions
  /**
   * Adds a fourth upstream, `ledger`, behind `/ledger` (`token: exchange`,
   * `LEDGER_EXCHANGE`) and these exchange routes, and turns on the IdP's
   * exchange grants (`STACK_EXCHANGE` unless given).
   */
  readonly exchange?: {
    readonly routes?: readonly { readonly path: string; readonly exchange: ExchangeConfig }[]
    readonly idp?: DevTokenExchange
  }
  /** Default `silent`. */
  readonly logLevel?: LogLevel
  /** `tracing.enabled`; the exporter and sampler are the process's OTEL_* variables. */
  readonly tracing?: boolean
}

export interface AudienceStack {
  readonly idp: DevIdp
  /** `/api` forwards the login token, `/orders` the orders token, `/reports` a reports.read token. */
  readonly upstreams: {
    readonly api: EchoUpstream
    readonly orders: EchoUpstream
    readonly reports: EchoUpstream
    /** Present with `exchange`. */
    readonly ledger?: EchoUpstream
  }
  readonly urls: readonly string[]
  readonly configs: readonly GatehouseConfig[]
  readonly apps: readonly Awaited<ReturnType<typeof buildGateway>>[]
  /** A logged-in browser, its cookie copied to every replica's origin. */
  readonly jar: CookieJar
  close(): Promise<void>
}

/**
 * The rotating dev IdP with RFC 8707 resource indicators, three upstreams
 * of different audiences, and one or more gateways in front of them.
 */
export async function startAudienceStack(options: AudienceStackOptions = {}): Promise<AudienceStack> {
  // The IdP must know the first gateway's redirect URI, so the ports are
  // chosen first; onFreePorts picks again if one is taken before its listen.
  const started = await onFreePorts(options.replicas ?? 1, async (ports) => {
    const idp = await startDevIdp({
      accessTokenTtl: options.accessTokenTtl ?? 60,
      clients: [
        {
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          redirectUris: [`http://127.0.0.1:${ports[0]}/auth/callback`],
        },
      ],
      resourceIndicators: {
        resources: { [ORDERS]: { scopes: ['orders.read'] }, [REPORTS]: { scopes: ['reports.read'] } },
        ...(options.refusedAtTokenEndpoint ? { refusedAtTokenEndpoint: options.refusedAtTokenEndpoint } : {}),
      },
      ...(options.exchange ? { tokenExchange: options.exchange.idp ?? STACK_EXCHANGE } : {}),
    })
    const upstream = () =>
      startEchoUpstream(options.rejectInactive ? { introspect: idp.introspect, rejectInactive: true } : {})
    const [api, orders, reports, ledger] = await Promise.all([
      upstream(),
      upstream(),
      upstream(),
      ...(options.exchange ? [upstream()] : []),
    ])
    const exchangeRoutes = options.exchange
      ? [{ path: '/ledger', exchange: LEDGER_EXCHANGE }, ...(options.exchange.routes ?? [])].map((r) =>
          route(r.path, ledger!.url, { ...options.routeOptions, token: 'exchange', exchange: r.exchange }),
        )
      : []
    const configs: GatehouseConfig[] = []
    const apps: Awaited<ReturnType<typeof buildGateway>>[] = []
    try {
      for (const port of ports) {
        const config = testConfig({
          port,
          // Behind a real load balancer the replicas share one origin.
          publicUrl: `http://127.0.0.1:${ports[0]}`,
          issuer: idp.issuer,
          ...(options.redisUrl ? { store: options.redisUrl } : {}),
          ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}),
          ...(options.secrets ? { secrets: options.secrets } : {}),
          refreshBefore: options.refreshBefore ?? 5_000,
          // RFC 6749 §6: a refresh may only ask for scopes the login was granted.
          oidc: { scopes: ['openid', 'profile', 'offline_access', 'orders.read', 'reports.read'] },
          routes: [
            route('/api', api!.url, options.routeOptions),
            route('/orders', orders!.url, { resource: ORDERS, ...options.routeOptions }),
            route('/reports', reports!.url, {
              resource: REPORTS,
              scopes: ['reports.read'],
              ...options.routeOptions,
            }),
            ...exchangeRoutes,
          ],
          ...(options.logLevel ? { logLevel: options.logLevel } : {}),
          ...(options.tracing ? { tracing: { enabled: true } } : {}),
        })
        const stores = options.redisUrl
          ? await createRedisStores(config, options.gateway?.now ?? Date.now)
          : undefined
        const app = await buildGateway(config, { ...options.gateway, ...(stores ? { stores } : {}) })
        await listenOn(app, port)
        apps.push(app)
        await app.gatehouse.whenDiscovered()
        configs.push(config)
      }
    } catch (err) {
      for (const app of apps) await app.close()
      await Promise.all([api!.close(), orders!.close(), reports!.close(), ledger?.close()])
      await idp.close()
      throw err
    }
    return { idp, api: api!, orders: orders!, reports: reports!, ledger, configs, apps, ports }
  })
  const { idp, api, orders, reports, ledger, configs, apps, ports } = started
  const urls = ports.map((p) => `http://127.0.0.1:${p}`)
  const { jar } = await login(urls[0]!)
  // Behind a real load balancer the replicas share one origin; here each
  // has a port, so the browser's cookie is copied to each.
  for (const url of urls.slice(1)) jar.set(url, 'gatehouse', jar.get(urls[0]!, 'gatehouse')!)
  return {
    idp,
    upstreams: { api, orders, reports, ...(ledger ? { ledger } : {}) },
    urls,
    configs,
    apps,
    jar,
    async close() {
      for (const app of apps) await app.close()
      await Promise.all([api.close(), orders.close(), reports.close(), ledger?.close()])
      await idp.close()
    },
  }
}

/** The audiences of the distinct bearer tokens an upstream saw, as the IdP describes them. */
export async function audiencesSeen(idp: DevIdp, upstream: EchoUpstream): Promise<Set<string>> {
  const tokens = new Set(upstream.requests.map((r) => r.authorization?.slice('Bearer '.length) ?? ''))
  const audiences = new Set<string>()
  for (const token of tokens) {
    const found = token ? await idp.introspect(token) : { active: false }
    audiences.add(found.active ? String(found.aud ?? '(none)') : '(inactive)')
  }
  return audiences
}
