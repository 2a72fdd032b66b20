import type { FastifyInstance } from 'fastify'
import { type OwnRoutesOptions, ownRoutes as ownRoutesOf } from '../http/own-routes.js'

/** What the own routes of every frontend take from the app, whichever frontend they serve. */
export type OwnRouteDeps = Pick<
  OwnRoutesOptions,
  'stores' | 'refusals' | 'owedLogouts' | 'owedRevocations' | 'heldLogouts' | 'onLogin' | 'onOverBound'
>

/** What one frontend's own routes are given: its config, providers, sessions and names. */
export type FrontendOwnRoutes = Omit<OwnRoutesOptions, keyof OwnRouteDeps>

/**
 * The stores, the process's owed logouts and revocations and held logout
 * tokens (server/lasting.ts), the refusals `/readyz` shows and the
 * observers of sign-ins, from `app.gatehouse` and `app.observers`: the one
 * place a dependency of the own routes is added, for the one frontend of a
 * config without `frontends:` (gateway.ts) and for each named one
 * (frontends.ts) alike.
 */
export function ownRouteDeps(app: FastifyInstance): OwnRouteDeps {
  const { stores, lasting } = app.gatehouse
  return {
    stores,
    refusals: app.observers.refusals,
    owedLogouts: lasting.owedLogouts,
    owedRevocations: lasting.owedRevocations,
    heldLogouts: lasting.heldLogouts,
    onLogin: app.observers.login,
    onOverBound: app.observers.overBound,
  }
}

/**
 * The gateway's own routes (http/own-routes.ts) for one frontend, given
 * `ownRouteDeps`; a plugin of its own scope, as that one is.
 */
export async function ownRoutes(app: FastifyInstance, opts: FrontendOwnRoutes): Promise<void> {
  await ownRoutesOf(app, { ...ownRouteDeps(app), ...opts })
}
