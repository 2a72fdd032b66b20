import type { FastifyRequest } from 'fastify'
import { gatehouseError } from '../errors.js'

/**
 * For the endpoints only a navigation has business with: sign-in and its
 * callback. They are rate limited per client address (`auth.rateLimit`),
 * and a page of any site can have its visitor's browser request them with
 * images, `fetch` or frames, spending the budget of the visitor's address
 * (and of everyone behind the same NAT) until sign-in answers 429. Fetch
 * metadata (W3C Fetch Metadata Request Headers) says who started a request
 * and what for, so what another site or a sibling subdomain started that is
 * not a navigation, or is one into `<object>` or `<embed>`, is refused
 * before it counts. With `framedByOtherSites: false` so is a frame another
 * site opened: there no sign-in could complete, since the browser neither
 * sends nor sets the `SameSite=Lax` cookies in it. Only `Sec-Fetch-Site`
 * tells a browser's metadata: Node's and Deno's `fetch` send
 * `Sec-Fetch-Mode: cors` alone. Requests of this origin, and those without
 * it (an older browser, a client that is not a browser), pass, and count,
 * as before.
 */
export function navigationCheck(options: { readonly framedByOtherSites: boolean }) {
  return function check(request: FastifyRequest): void {
    if (!startedElsewhere(request)) return
    const site = request.headers['sec-fetch-site']
    const dest = request.headers['sec-fetch-dest']
    if (request.headers['sec-fetch-mode'] !== 'navigate' || dest === 'object' || dest === 'embed')
      throw gatehouseError('GATEHOUSE_ERR_NOT_A_NAVIGATION')
    if (!options.framedByOtherSites && site === 'cross-site' && dest !== 'document')
      throw gatehouseError('GATEHOUSE_ERR_NOT_A_NAVIGATION')
  }
}

/**
 * Whether fetch metadata says another site or a sibling subdomain started
 * `request`; `false` for this origin's, a typed address, and a request
 * without metadata (an older browser, a client that is not a browser).
 */
export function startedElsewhere(request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site']
  return site === 'cross-site' || site === 'same-site'
}
