import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import type { Registry } from 'prom-client'
import type { GatehouseConfig } from '../config/types.js'
import { plainErrorAnswer } from './error-handler.js'

export interface MetricsListener {
  /** Starts listening on `metrics.host:metrics.port`; resolves with its URL. */
  listen(): Promise<string>
  /** Stops listening and drops the scrapers' connections. */
  close(): Promise<void>
}

/**
 * `/metrics` on a listener of its own (`metrics.host`, default loopback),
 * never on the public one: process and traffic figures are for the scraper,
 * not for anyone who can reach the app. It serves the process's one
 * registry (lasting.ts), whichever config is running, and is closed by
 * whoever started it.
 */
export function metricsListener(
  registry: Registry,
  log: FastifyBaseLogger,
  config: GatehouseConfig,
): MetricsListener {
  const server = createServer(
    {
      headersTimeout: config.server.headersTimeout,
      requestTimeout: config.server.requestTimeout,
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => {
      const path = (req.url ?? '').split('?')[0]
      if (path !== '/metrics') {
        res.writeHead(404).end()
        return
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        // RFC 9110 §15.5.6, answered as the gateway's own routes answer it.
        const refusal = plainErrorAnswer('GATEHOUSE_ERR_METHOD_NOT_ALLOWED', { allow: 'GET, HEAD' })
        res.writeHead(refusal.status, refusal.headers).end(refusal.body)
        return
      }
      registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
        () => res.writeHead(500).end(),
      )
    },
  )
  return {
    async close() {
      if (!server.listening) return
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
    async listen() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, config)))
        server.listen(config.metrics.port, config.metrics.host, () => {
          server.removeAllListeners('error')
          resolve()
        })
      })
      // A failed accept (EMFILE) must not take the gateway down with it.
      server.on('error', (err) => log.warn({ err }, 'metrics listener error'))
      const { address, port } = server.address() as AddressInfo
      const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}/metrics`
      log.info({ url }, 'metrics listening')
      return url
    },
  }
}

/**
 * A bind failure says which setting to change: Node's own message names
 * only the address, and an operator who never set a metrics port does not
 * know Gatehouse listens on a second one. The code, address and port are kept for callers.
 */
function listenError(err: NodeJS.ErrnoException, config: GatehouseConfig): Error {
  const { host, port } = config.metrics
  const why =
    err.code === 'EADDRINUSE'
      ? `port ${port} on ${host} is already in use`
      : err.code === 'EACCES'
        ? `port ${port} on ${host} needs privileges this process lacks`
        : err.code === 'EADDRNOTAVAIL'
          ? `${host} is not an address of this host`
          : err.message
  const message = `the metrics listener cannot listen: ${why} (${err.code ?? 'error'}); set metrics.port (and metrics.host) to a free port, or metrics.enabled: false`
  const {
    code,
    errno,
    syscall,
    address,
    port: errPort,
  } = err as NodeJS.ErrnoException & {
    address?: string
    port?: number
  }
  return Object.assign(new Error(message, { cause: err }), { code, errno, syscall, address, port: errPort })
}
