import type { FastifyInstance } from 'fastify'
import type { GatehouseConfig } from '../config/types.js'
import { buildGateway, type GatewayOptions } from './gateway.js'
import { metricsListener } from './metrics-listener.js'

/**
 * Longest wait for requests in flight after SIGTERM or SIGINT, by default.
 * A Kubernetes pod's terminationGracePeriodSeconds must cover its preStop
 * delay plus this (deploy/kubernetes, checked by test/deploy/kubernetes.test.ts).
 */
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000 // 10 s

export interface RunningGateway {
  readonly app: FastifyInstance
  /** The address it listens on, e.g. `http://127.0.0.1:3000`. */
  readonly url: string
  /** Where Prometheus scrapes, e.g. `http://127.0.0.1:9464/metrics`; undefined with metrics off. */
  readonly metricsUrl: string | undefined
  close(): Promise<void>
}

export interface StartOptions extends GatewayOptions {
  /** Install SIGTERM/SIGINT handlers that drain and exit. Default true. */
  readonly handleSignals?: boolean
  /** Longest wait for requests in flight on shutdown, ms. */
  readonly drainTimeout?: number
}

/**
 * Builds the gateway, listens, and owns its shutdown: on SIGTERM or SIGINT
 * it stops accepting connections, lets requests in flight finish for up to
 * `drainTimeout`, closes the stores and exits 0. A second signal forces exit.
 */
export async function start(config: GatehouseConfig, options: StartOptions = {}): Promise<RunningGateway> {
  const app = await buildGateway(config, options)
  const metrics = config.metrics.enabled ? metricsListener(app, config) : undefined
  const url = await app.listen({ host: config.server.host, port: config.server.port })
  let metricsUrl: string | undefined
  try {
    metricsUrl = await metrics?.listen()
  } catch (err) {
    await app.close()
    throw err
  }
  app.log.info(
    {
      url,
      publicUrl: config.server.publicUrl,
      issuer: config.oidc.issuer,
      store: config.session.store.display,
      routes: config.routes.map((r) => `${r.path} -> ${r.upstream}${r.rewritePath} (${r.token})`),
    },
    `gatehouse listening on ${url}: ${config.routes.length} routes, ${config.session.store.kind} store, issuer ${config.oidc.issuer}`,
  )

  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= app.close()
    return closing
  }

  if (options.handleSignals !== false) {
    const drainTimeout = options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT_MS
    let signalled = false
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        app.log.warn({ signal }, 'second signal: exiting now')
        process.exit(1)
      }
      signalled = true
      app.log.info({ signal, drainTimeout }, 'shutting down: draining requests in flight')
      const force = setTimeout(() => {
        app.log.warn('drain timeout reached: exiting with requests still in flight')
        process.exit(1)
      }, drainTimeout)
      force.unref()
      close().then(
        () => process.exit(0),
        (err: unknown) => {
          app.log.error({ err }, 'error during shutdown')
          process.exit(1)
        },
      )
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  }
  return { app, url, metricsUrl, close }
}
