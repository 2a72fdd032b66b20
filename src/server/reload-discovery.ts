import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import type { OidcClient } from '../oidc/client.js'
import { rediscover } from '../oidc/rediscovery.js'
import { withTimeout } from './with-timeout.js'

/**
 * The discovery a reload waits for before `app`, built for `next`, is
 * swapped in: that of each new client with no document to start from,
 * bounded by its provider's timeout; it throws if one is not discovered
 * in time. The others are discovered again (`rediscoverWithin`).
 */
export async function discoverForReload(
  app: FastifyInstance,
  next: GatehouseConfig,
  runningClients: readonly OidcClient[],
  log: FastifyBaseLogger,
  stop: AbortSignal,
): Promise<void> {
  // A provider whose entry is unchanged keeps the running client,
  // discovered or still retrying; one changed in what discovery does
  // not read starts from the running client's document
  // (provider-clients.ts `sameDiscovery`). Both are discovered again, their metadata kept if
  // that fails: one IdP down must not hold back a change to another.
  // Only a new client with no document to start from (a new issuer)
  // is discovered before any request depends on it; the running
  // config serves meanwhile.
  const running = new Set(runningClients)
  const all = app.gatehouse.providers.all
  const fresh = all.filter((client) => !running.has(client) && !client.discovered)
  const waited = next.identityProviders.filter((p) => fresh.some((client) => client.name === p.name))
  if (waited.length > 0)
    await withTimeout(
      app.gatehouse.whenDiscovered(fresh),
      Math.max(...waited.map((p) => p.timeout)),
      `the identity provider ${waited.map((p) => p.issuer).join(' or ')} could not be discovered within oidc.timeout`,
      // An IdP that is down would hold the shutdown for its whole timeout.
      stop,
    )
  await rediscoverWithin(
    all.filter((client) => !fresh.includes(client)),
    next,
    log,
    stop,
  )
}

/**
 * Discovers again `clients`, those a reload keeps or starts from the
 * running document (rediscovery.ts): a new document is in use once it
 * passes, a failure keeps the one in use, and neither stops the reload.
 * Each is bounded by its provider's timeout, and all by the shutdown.
 */
export async function rediscoverWithin(
  clients: readonly OidcClient[],
  config: GatehouseConfig,
  log: FastifyBaseLogger,
  stop: AbortSignal,
): Promise<void> {
  await withTimeout(
    rediscover(clients, log),
    Math.max(...config.identityProviders.map((p) => p.timeout)) + 1_000,
    'rediscovery outlived its timeout',
    stop,
  ).catch(() => {})
}
