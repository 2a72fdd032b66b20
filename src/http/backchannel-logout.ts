import type { FastifyInstance } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import type { IdentityProviders } from '../oidc/providers.js'
import type { Sessions } from '../session/sessions.js'
import type { ReplayCache } from '../tokens/types.js'
import { type HeldLogout, heldLogoutAttempts } from './held-logout-attempts.js'
import type { HeldHandover } from './held-logout-tokens.js'
import { LogoutCarryOut } from './logout-carry-out.js'
import { logoutRequestRoutes } from './logout-request.js'
import { LogoutTokenChecks } from './logout-token-checks.js'
import type { OwedLogout, OwedLogouts } from './owed-logouts.js'

export interface BackchannelLogoutDeps {
  readonly config: {
    readonly auth: Pick<GatehouseConfig['auth'], 'basePath'>
    readonly session: Pick<GatehouseConfig['session'], 'absoluteTimeout'>
  }
  readonly providers: IdentityProviders
  readonly sessions: Sessions
  readonly replay: ReplayCache
  /** The process's logouts owed since a store outage, which outlive this app (server/lasting.ts). */
  readonly owed: OwedLogouts<OwedLogout>
  /** Where what this app still holds unverified goes when it closes, and comes from (server/lasting.ts). */
  readonly handover: HeldHandover<HeldLogout>
  /** The frontend whose routes these are (`frontends[].name`); `''` without `frontends:`. */
  readonly frontend: string
  readonly now: () => number
}

/**
 * OpenID Connect Back-Channel Logout 1.0 at `{basePath}/backchannel-logout`,
 * and at `{basePath}/backchannel-logout/<provider name>` for each provider.
 *
 * A logout token ends only sessions of the clients it is for: it is
 * verified against one provider's issuer, client id and JWKS (§2.6), and
 * the sessions it names are looked up in the `sub` and `sid` indexes of
 * every provider entry with that issuer and client id (usually that one
 * alone), so the same `sub` or `sid` at another issuer or client is never
 * touched. On the shared path the candidates are the providers whose
 * issuer and client id the token claims, and the token is for each of
 * their clients (its `aud` may name several); on a provider's own path,
 * for that provider's alone.
 *
 * The request is read and answered in logout-request.ts, its token
 * verified in logout-token-checks.ts, and the sessions it names ended in
 * logout-carry-out.ts; a token the store failed is owed (owed-logouts.ts),
 * and one whose issuer's keys could not be read is held
 * (held-logout-attempts.ts). Both outlive this app.
 */
export async function backchannelLogoutRoute(app: FastifyInstance, deps: BackchannelLogoutDeps) {
  const { config, providers, replay, owed, handover, frontend } = deps
  const checks = new LogoutTokenChecks(deps.now)
  const carrier = new LogoutCarryOut(deps)
  // What is owed outlives this app: the app a reload builds carries it out.
  const unserve = owed.serve((what, stop) => carrier.carryOut(what, 'owed', stop))
  const held = heldLogoutAttempts({ providers, checks, carrier, handover, frontend })
  app.addHook('onClose', async () => {
    unserve()
    held.close()
  })

  await logoutRequestRoutes(app, {
    base: config.auth.basePath,
    providers,
    replay,
    checks,
    carrier,
    hold: held.hold,
    now: deps.now,
  })
}
