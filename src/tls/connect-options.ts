import type { Socket } from 'node:net'
import { buildConnector } from 'undici'
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

/**
 * undici's connector with `options`, except that a TLS alert stays the
 * connection's error. A TLS 1.3 server checks the client certificate after
 * the client has finished its side of the handshake (RFC 8446 §4.4.2.4), so
 * its refusal (alert 116 `certificate_required`, or `bad_certificate`,
 * `unknown_ca`) arrives on the first read, as `ERR_SSL_TLSV13_ALERT_*`.
 * undici records it, but the socket's `end` that follows replaces it with
 * "other side closed"; closing the socket at the alert keeps the alert as
 * the request's error, so it is classified as the TLS failure it is.
 */
export function keepingTlsAlerts(options: buildConnector.BuildOptions): buildConnector.connector {
  const connect = buildConnector(options)
  return (target, callback) =>
    connect(target, (...args) => {
      args[1]?.on('error', closeOnTlsAlert)
      callback(...args)
    })
}

function closeOnTlsAlert(this: Socket, error: Error & { code?: string }): void {
  if (error.code?.startsWith('ERR_SSL_')) this.destroy()
}
