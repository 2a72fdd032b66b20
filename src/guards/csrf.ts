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

/**
 * Anti-forgery for a `csrf: false` route whose upstream gets a token for the
 * session. `csrf: false` spares navigations the header, since a link or a
 * typed address cannot carry one; it must not spare everything else another
 * origin starts. `SameSite=Lax` keeps the cookie from another site's forms,
 * `fetch` and images, but a sibling subdomain is the same site, so it would
 * post, fetch and embed with the user's token, and read the answer wherever
 * the upstream allows its origin with credentials (CORS). So from another
 * origin only a navigation with GET or HEAD passes: Fetch Metadata's
 * resource isolation policy (W3C Fetch Metadata Request Headers, §5.1),
 * which refuses navigations into `<object>` and `<embed>` too. A foreign
 * `Origin` is refused whatever the metadata says: it comes with every
 * cross-origin POST and CORS request, and never with a GET navigation,
 * so it refuses what a browser without fetch metadata sends.
 */
export function navigationsOnlyCheck(config: AntiForgeryConfig) {
  const origin = new URL(config.server.publicUrl).origin
  return function check(request: FastifyRequest): void {
    const from = request.headers.origin
    if (from !== undefined && from !== origin) throw gatehouseError('GATEHOUSE_ERR_CROSS_SITE')
    const site = request.headers['sec-fetch-site']
    if (site !== 'cross-site' && site !== 'same-site') return
    const dest = request.headers['sec-fetch-dest']
    const navigation =
      request.headers['sec-fetch-mode'] === 'navigate' &&
      (request.method === 'GET' || request.method === 'HEAD') &&
      dest !== 'object' &&
      dest !== 'embed'
    if (!navigation) throw gatehouseError('GATEHOUSE_ERR_CROSS_SITE')
  }
}

function refuseCrossSite(request: FastifyRequest, origin: string, originRequired: boolean): void {
  const site = request.headers['sec-fetch-site']
  if (site === 'cross-site' || site === 'same-site') throw gatehouseError('GATEHOUSE_ERR_CROSS_SITE')
  const from = request.headers.origin
  if (from === undefined ? originRequired : from !== origin) throw gatehouseError('GATEHOUSE_ERR_CROSS_SITE')
}
