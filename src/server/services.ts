import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { GatehouseConfig } from '../config/types.js'
import { OidcClient } from '../oidc/client.js'
import { type Discovery, discoverWithRetry } from '../oidc/discovery.js'
import { Sessions } from '../session/sessions.js'
import { reportCertificateExpiry } from '../tls/certificate-expiry.js'
import { ClientTokens } from '../tokens/client-tokens.js'
import { type Coordination, UserTokens } from '../tokens/user-tokens.js'
import type { GatewayMetrics } from './metrics.js'
import { createStores, type Stores } from './stores.js'

/** What one gateway holds: its stores, its IdP client, and the sessions and tokens built on them. */
export interface GatehouseState {
  readonly config: GatehouseConfig
  readonly stores: Stores
  readonly oidc: OidcClient
  readonly metrics: GatewayMetrics
  readonly sessions: Sessions
  readonly userTokens: UserTokens
  readonly clientTokens: ClientTokens
  /** Resolves once the IdP has been discovered. */
  whenDiscovered(): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    gatehouse: GatehouseState
  }
}

export interface ServicesOptions {
  readonly config: GatehouseConfig
  /** Clock for token expiry and session timeouts, epoch ms. */
  readonly now: () => number
  /** Stores to use instead of those named by `session.store`. */
  readonly stores?: Stores | undefined
  /** Initial lifetime of the refresh lock, ms; default: the IdP timeout plus 5 s. */
  readonly lockTtl?: number | undefined
  /** See `UserTokensOptions.coordination`: tests only. */
  readonly coordination?: Coordination | undefined
}

/**
 * Every client this gateway holds (stores, Redis, the IdP's HTTP client)
 * is created here and closed in this plugin's `onClose`; discovery starts
 * once the app is ready. Shared as `app.gatehouse`.
 */
export const services = fp(
  async function services(app: FastifyInstance, opts: ServicesOptions) {
    const { config, now } = opts
    const { metrics, idp, refresh, clientTokens: cache } = app.observers
    const stores = opts.stores ?? (await createStores(config, now, app.log))
    metrics.watchStore(stores.sessions)
    reportCertificateExpiry(config, metrics.registry, app.log, now)
    let unwatchStore: (() => void) | undefined
    if (stores.sessions.kind === 'redis') {
      // Loaded only for Redis, as in createStores: memory mode never loads ioredis.
      const { reportSessionCache } = await import('./redis-stores.js')
      reportSessionCache(stores.sessions, app.log)
      if (stores.redis) {
        const { logAvailability } = await import('../redis/availability.js')
        unwatchStore = logAvailability(stores.redis, app.log, config.session.store.display)
      }
    }
    const oidc = new OidcClient(config, now, idp)
    const sessions = new Sessions(stores.sessions, config.session, now, {
      revoke: (refreshToken) =>
        oidc.revoke(refreshToken).catch((err: { code?: string }) => {
          app.log.warn({ code: err.code }, 'refresh token revocation failed')
        }),
    })
    // Both token kinds fetch once per lifetime under the same lock discipline.
    const fetchOnce = {
      locks: stores.locks,
      oidc,
      refreshBefore: config.tokens.refreshBefore,
      refreshWait: config.tokens.refreshWait,
      lockTtl: opts.lockTtl ?? config.oidc.timeout + 5_000,
      now,
    }
    const userTokens = new UserTokens({
      ...fetchOnce,
      store: stores.sessions,
      unavailableLimit: config.tokens.unavailableLimit,
      coordination: opts.coordination ?? 'single-flight',
      cooldown: { store: stores.cooldowns, ms: config.tokens.retryCooldown },
      observer: refresh,
    })
    const clientTokens = new ClientTokens({ ...fetchOnce, cache: stores.clientTokens, observer: cache })

    let discovery: Discovery | undefined
    app.decorate('gatehouse', {
      config,
      stores,
      oidc,
      metrics,
      sessions,
      userTokens,
      clientTokens,
      whenDiscovered: () =>
        discovery ? discovery.ready : Promise.reject(new Error('gateway is not ready yet')),
    } satisfies GatehouseState)

    app.addHook('onReady', async () => {
      discovery = discoverWithRetry(oidc, app.log)
    })
    app.addHook('onClose', async () => {
      discovery?.stop()
      // Our own close of the connection is no outage.
      unwatchStore?.()
      await oidc.close()
      await stores.close()
    })
  },
  { name: 'gatehouse-services', fastify: '5.x', dependencies: ['gatehouse-observability'] },
)
