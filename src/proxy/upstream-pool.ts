import { Pool } from 'undici'
import type { RouteConfig } from '../config/types.js'
import { connector, tlsConnectOptions } from '../tls/connect-options.js'

/**
 * The undici pool that carries one route's requests to its upstream. Every
 * outbound call is bounded: connect within the route's `timeout` (at most
 * 10 s), headers and each body chunk within `timeout`. `routes[].tls`
 * gives the handshake its CA, client certificate and server name. The caller owns the
 * pool and closes it with its scope.
 */
export function upstreamPool(route: RouteConfig): Pool {
  return new Pool(route.upstream, {
    // Keep-alive connections to each upstream; pipelining stays at 1
    // because upstreams rarely handle it well and head-of-line blocking
    // would turn one slow call into many.
    connections: 128,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: route.timeout,
    bodyTimeout: route.timeout,
    connect: connector({ timeout: Math.min(route.timeout, 10_000), ...tlsConnectOptions(route.tls) }),
  })
}
