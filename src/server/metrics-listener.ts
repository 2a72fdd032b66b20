import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'

export interface MetricsListener {
  /** Starts listening on `metrics.host:metrics.port`; resolves with its URL. */
  listen(): Promise<string>
}

/**
 * `/metrics` on a listener of its own (`metrics.host`, default loopback),
 * never on the public one: process and traffic figures are for the scraper,
 * not for anyone who can reach the app. Created before the gateway listens,
 * it closes with the gateway (its `onClose`), whoever closes it.
 */
export function metricsListener(app: FastifyInstance, config: GatehouseConfig): MetricsListener {
  const { registry } = app.gatehouse.metrics
  const server = createServer(
    {
      headersTimeout: config.server.headersTimeout,
      requestTimeout: config.server.requestTimeout,
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => {
      const path = (req.url ?? '').split('?')[0]
      if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404).end()
        return
      }
      registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
        () => res.writeHead(500).end(),
      )
    },
  )
  app.addHook('onClose', async () => {
    if (!server.listening) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return {
    async listen() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(config.metrics.port, config.metrics.host, () => {
          server.off('error', reject)
          resolve()
        })
      })
      // A failed accept (EMFILE) must not take the gateway down with it.
      server.on('error', (err) => app.log.warn({ err }, 'metrics listener error'))
      const { address, port } = server.address() as AddressInfo
      const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}/metrics`
      app.log.info({ url }, 'metrics listening')
      return url
    },
  }
}
