import type { FastifyRequest } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { gatehouseError } from '../errors.js'

/** What the anti-forgery checks read of the config: the header's name and this origin. */
export interface AntiForgeryConfig {
  readonly csrf: Pick<GatehouseConfig['csrf'], 'header'>
  readonly server: Pick<GatehouseConfig['server'], 'publicUrl'>
}

/**
 * Anti-forgery for script-only endpoints (RFC 10017 §6.1.3.3.2): a custom
 * header cannot be sent cross-origin without a CORS preflight that Gatehouse
 * never grants. Fetch metadata and Origin, when the browser sends them,
 * refuse cross-site calls outright.
 */
export function csrfCheck(config: AntiForgeryConfig) {
  const header = config.csrf.header
  const origin = new URL(config.server.publicUrl).origin
  return function check(request: FastifyRequest): void {
    refuseCrossSite(request, origin, false)
    if (request.headers[header] !== '1') throw gatehouseError('GATEHOUSE_ERR_CSRF')
  }
}

/**
 * Anti-forgery for WebSocket upgrades: a browser cannot set a custom header
 * on a WebSocket, but it always sends `Origin` on one (RFC 6455 §4.1, §10.2),
 * and it sends cookies whichever site opens it (cross-site WebSocket
 * hijacking). So the upgrade must name this origin.
 */
export function upgradeOriginCheck(config: AntiForgeryConfig) {
  const origin = new URL(config.server.publicUrl).origin
  return function check(request: FastifyRequest): void {
    refuseCrossSite(request, origin, true)
  }
}

function refuseCrossSite(request: FastifyRequest, origin: string, originRequired: boolean): void {
  const site = request.headers['sec-fetch-site']
  if (site === 'cross-site' || site === 'same-site') throw gatehouseError('GATEHOUSE_ERR_CROSS_SITE')
  const from = request.headers.origin
  if (from === undefined ? originRequired : from !== origin) throw gatehouseError('GATEHOUSE_ERR_CROSS_SITE')
}
