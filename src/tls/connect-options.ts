import type { TlsMaterial } from '../config/types.js'

/** Node TLS connect options for `oidc.tls` or `routes[].tls`; empty without them. */
export interface TlsConnectOptions {
  ca?: string
  cert?: string
  key?: string
  servername?: string
}

/**
 * The one place configured TLS material becomes connect options, for the
 * IdP's agent, each route's pool and its WebSocket dials alike. `ca`
 * replaces Node's bundled roots (a private CA); `cert` and `key` are offered
 * when the server asks for a client certificate; `servername` is sent as SNI
 * and is the name the server's certificate must carry.
 */
export function tlsConnectOptions(tls: TlsMaterial | undefined): TlsConnectOptions {
  if (!tls) return {}
  return {
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined || tls.key === undefined ? {} : { cert: tls.cert, key: tls.key }),
    ...(tls.servername === undefined ? {} : { servername: tls.servername }),
  }
}
