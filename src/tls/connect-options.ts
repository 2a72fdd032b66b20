import { Socket } from 'node:net'
import { createSecureContext, type SecureContext } from 'node:tls'
import { buildConnector, errors } from 'undici'
import type { TlsMaterial } from '../config/types.js'
import { needsOwnTimer } from '../undici-timers.js'

/** Node TLS connect options for `oidc.tls` or `routes[].tls`; empty without them. */
export interface TlsConnectOptions {
  secureContext?: SecureContext
  ca?: string
  cert?: string
  key?: string
  servername?: string
}

/** Each material's context, made once: the same object serves every pool, agent and dial of its config. */
const contexts = new WeakMap<TlsMaterial, TlsConnectOptions>()

/**
 * The one place configured TLS material becomes connect options, for the
 * IdP's agent, each route's pool and its WebSocket dials alike. `ca`
 * replaces Node's bundled roots (a private CA); `cert` and `key` are offered
 * when the server asks for a client certificate; `servername` is sent as SNI
 * and is the name the server's certificate must carry.
 *
 * The material goes to Node as one `SecureContext`, made once per config:
 * given as text, `tls.connect` makes a context for every connection,
 * parsing every certificate of `ca` again (8–30 ms of the event loop for
 * Debian's bundle of 144, on a 2-vCPU VM), and the key and certificate with
 * it, so a route's burst of new connections held the loop for seconds. Material OpenSSL refuses,
 * which the config's checks let pass, goes as text, so its handshakes
 * fail as they did, each with its error.
 */
export function tlsConnectOptions(tls: TlsMaterial | undefined): TlsConnectOptions {
  if (!tls) return {}
  const made = contexts.get(tls)
  if (made) return made
  const material = {
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined || tls.key === undefined ? {} : { cert: tls.cert, key: tls.key }),
  }
  const sni = tls.servername === undefined ? {} : { servername: tls.servername }
  let options: TlsConnectOptions
  if (Object.keys(material).length === 0) options = sni
  else {
    try {
      options = { secureContext: createSecureContext(material), ...sni }
    } catch {
      options = { ...material, ...sni }
    }
  }
  contexts.set(tls, options)
  return options
}

/**
 * undici's connector with `options`, except that a TLS alert stays the
 * connection's error, and that a connect budget (`timeout`) too short for
 * undici's coarse timer is kept to the millisecond (see undici-timers.ts).
 * A TLS 1.3 server checks the client certificate after
 * the client has finished its side of the handshake (RFC 8446 §4.4.2.4), so
 * its refusal (alert 116 `certificate_required`, or `bad_certificate`,
 * `unknown_ca`) arrives on the first read, as `ERR_SSL_TLSV13_ALERT_*`.
 * undici records it, but the socket's `end` that follows replaces it with
 * "other side closed"; closing the socket at the alert keeps the alert as
 * the request's error, so it is classified as the TLS failure it is.
 */
export function connector(options: buildConnector.BuildOptions): buildConnector.connector {
  const connect = onTime(buildConnector(options), options.timeout)
  return (target, callback) =>
    connect(target, (...args) => {
      args[1]?.on('error', closeOnTlsAlert)
      callback(...args)
    })
}

function closeOnTlsAlert(this: Socket, error: Error & { code?: string }): void {
  if (error.code?.startsWith('ERR_SSL_')) this.destroy()
}

/**
 * `connect` with its budget also kept by a native timer when undici's would
 * fire it late, failing with undici's own error so that it reads the same
 * (a route's 504, the IdP's `connect timed out after … (oidc.connectTimeout)`).
 * One timer per new connection, never per request: kept-alive connections
 * are reused.
 */
function onTime(
  connect: buildConnector.connector,
  timeout: number | null | undefined,
): buildConnector.connector {
  if (timeout == null || !needsOwnTimer(timeout)) return connect
  return (target, callback) => {
    let settled = false
    // undici's connector returns the socket it dials, though its type says
    // nothing: when it does, the timer closes it, and the peer sees that.
    let dialling: unknown
    const timer = setTimeout(() => {
      settled = true
      const address = target.port ? `${target.hostname}:${target.port}` : target.hostname
      const error = new errors.ConnectTimeoutError(
        `Connect Timeout Error (attempted address: ${address}, timeout: ${timeout}ms)`,
      )
      if (dialling instanceof Socket) dialling.destroy(error)
      callback(error, null)
    }, timeout)
    dialling = connect(target, (...args) => {
      clearTimeout(timer)
      if (!settled) {
        settled = true
        callback(...args)
      } else args[1]?.destroy()
    })
  }
}
