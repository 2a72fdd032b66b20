import type { FastifyRequest } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { gatehouseError } from '../errors.js'

/**
 * Anti-forgery for script-only endpoints (draft-ietf-oauth-browser-based-apps
 * §6.1.3.2): a custom header cannot be sent cross-origin without a CORS
 * preflight that Gatehouse never grants. Fetch metadata and Origin, when the
 * browser sends them, refuse cross-site calls outright.
 */
export function csrfCheck(config: GatehouseConfig) {
  const header = config.csrf.header
  const origin = new URL(config.server.publicUrl).origin
  return function check(request: FastifyRequest): void {
    const site = request.headers['sec-fetch-site']
    if (site === 'cross-site' || site === 'same-site') throw gatehouseError('GATEHOUSE_ERR_CROSS_SITE')
    const from = request.headers.origin
    if (from !== undefined && from !== origin) throw gatehouseError('GATEHOUSE_ERR_CROSS_SITE')
    if (request.headers[header] !== '1') throw gatehouseError('GATEHOUSE_ERR_CSRF')
  }
}
