import { isDeepStrictEqual } from 'node:util'
import type { FastifyInstance } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { sameCredentials } from '../oidc/client-refusals.js'
import type { Lasting } from './lasting.js'
import type { GatewayListener, Mount } from './listener.js'

/**
 * Every step of putting `next` in use that can fail (deriving keys from
 * its secrets, its certificates' lines and gauge, `app`'s place on the
 * listener), done now and changing nothing the running config uses; the
 * function returned applies them with the rest of the lasting state and
 * swaps `app` in, and does not throw.
 */
export function prepareSwap(
  lasting: Lasting,
  listener: GatewayListener,
  before: GatehouseConfig,
  next: GatehouseConfig,
  app: FastifyInstance,
  m: Mount,
): () => Promise<void> {
  const secrets = isDeepStrictEqual(before.session.secrets, next.session.secrets)
    ? undefined
    : lasting.stores.prepareSecrets?.(next.session.secrets)
  const certificates = lasting.certificates.prepare(next)
  const swap = listener.prepareSwap(app, m)
  const kept = sameCredentials(before.identityProviders, next.identityProviders)
  return () => {
    secrets?.()
    lasting.sockets.resize(next.server.maxWebSockets, next.session.maxWebSockets)
    certificates()
    lasting.refusals.keepOnly(kept)
    lasting.metrics.idpClientRefused.set(lasting.refusals.any ? 1 : 0)
    return swap()
  }
}
