import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import { addressNames } from '../crypto/derived-keys.js'
import { gatehouseError } from '../errors.js'
import type { ClientRefusals } from '../oidc/client-refusals.js'
import type { IdentityProviders } from '../oidc/providers.js'
import type { RedisClient } from '../redis/connection.js'
import { redisKeys } from '../redis/keys.js'
import type { Sessions } from '../session/sessions.js'
import type { SessionStore } from '../session/types.js'
import type { ReplayCache } from '../tokens/types.js'
import { type AuthRouteDeps, type AuthRoutesConfig, authRoutes } from './auth-routes.js'
import { type BackchannelLogoutDeps, backchannelLogoutRoute } from './backchannel-logout.js'
import { healthRoutes } from './health.js'
import { logoutEverywhereRoute } from './logout-everywhere.js'
import type { OwedRevocations } from './owed-revocations.js'
import { rateLimitKey } from './rate-limit-key.js'

export interface OwnRoutesOptions {
  readonly config: AuthRoutesConfig &
    BackchannelLogoutDeps['config'] & {
      readonly session: { readonly keyPrefix: string; readonly secrets: readonly string[] }
    }
  readonly providers: IdentityProviders
  readonly sessions: Sessions
  readonly stores: {
    readonly sessions: Pick<SessionStore, 'ping'>
    readonly replay: ReplayCache
    /** Shares the sign-in rate limits across instances when sessions are shared. */
    readonly redis?: RedisClient | undefined
  }
  /** The process's back-channel logouts owed since a store outage (server/lasting.ts). */
  readonly owedLogouts: BackchannelLogoutDeps['owed']
  /** The process's revocations of ended sessions' refresh tokens the IdP did not answer (server/lasting.ts). */
  readonly owedRevocations: OwedRevocations
  /** Where logout tokens held unverified pass from an app a reload retires to the next (server/lasting.ts). */
  readonly heldLogouts: BackchannelLogoutDeps['handover']
  /** The IdP's refusals of the gateway's credentials, for `/readyz`. */
  readonly refusals: Pick<ClientRefusals, 'detail'>
  readonly onLogin: NonNullable<AuthRouteDeps['onLogin']>
  readonly onOverBound: NonNullable<AuthRouteDeps['onOverBound']>
  readonly now: () => number
  /** The frontend these sign-in routes belong to (`frontends[]`); absent: the one frontend of a config without them. */
  readonly frontend?: AuthRouteDeps['frontend']
  /** Serve `/healthz` and `/readyz` here; false where they are served once for every frontend. Default true. */
  readonly health?: boolean
}

/**
 * The gateway's own routes, in a scope of their own: sign-in and sign-out
 * under `auth.basePath`, back-channel logout, and `/healthz` and `/readyz`.
 * Each says what it renders (`renders: 'page' | 'json'`), which marks its
 * answers as the gateway's own and picks how its errors leave.
 */
export async function ownRoutes(app: FastifyInstance, opts: OwnRoutesOptions) {
  const { config, providers, sessions, stores } = opts
  // @fastify/rate-limit names a route's counters by method and path only:
  // two frontends' `/auth/login` on two hosts would share one in Redis,
  // where in memory each route has its own.
  const nameSpace = `${redisKeys(config.session.keyPrefix).rateLimit}${opts.frontend ? `${opts.frontend.name}:` : ''}`
  // Counted under a keyed hash of the address: Redis, and every copy of it, holds no client's address.
  const named = addressNames(config.session.secrets)
  await app.register(rateLimit, {
    global: false,
    // Shared across instances when sessions are; a store outage must not
    // lock everyone out of signing in, so limits fail open.
    ...(stores.redis ? { redis: stores.redis, nameSpace, skipOnError: true } : {}),
    keyGenerator: (request) => named(rateLimitKey(request)),
    errorResponseBuilder: (_request, context) =>
      gatehouseError(
        'GATEHOUSE_ERR_RATE_LIMITED',
        `Too many sign-in attempts from this address. Retry in ${Math.ceil(context.ttl / 1000)} s.`,
      ),
  })
  await authRoutes(app, {
    config,
    providers,
    sessions,
    onLogin: opts.onLogin,
    onOverBound: opts.onOverBound,
    owedRevocations: opts.owedRevocations,
    ...(opts.frontend ? { frontend: opts.frontend } : {}),
  })
  // Back-channel logout ends the sessions of every frontend of the sub or
  // sid: the indexes it reads list them all (redis/keys.ts).
  await backchannelLogoutRoute(app, {
    config,
    providers,
    sessions,
    replay: stores.replay,
    owed: opts.owedLogouts,
    handover: opts.heldLogouts,
    frontend: opts.frontend?.name ?? '',
    now: opts.now,
  })
  await logoutEverywhereRoute(app, { config, providers, sessions, owedRevocations: opts.owedRevocations })
  if (opts.health ?? true)
    await healthRoutes(app, { providers, store: stores.sessions, refusals: opts.refusals })
}
