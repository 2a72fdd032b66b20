/*
 * The rules of the listeners (`server:` and `metrics:`) that the schema
 * cannot say: addresses a socket can bind, ports apart, and timeouts Node's
 * HTTP server and timers accept.
 */
import { parseDuration } from './duration.js'
import type { Add } from './finding.js'
import { listenHostProblem } from './listen-host.js'
import type { RawConfig } from './schema.js'
import { checkTimed, orNaN } from './timer-bounds.js'

const MAX_DRAIN_MS = 24 * 60 * 60 * 1000

/** `server.drainTimeout`, `keepAliveTimeout` and `sendTimeout` within what a timer keeps. */
export function checkServerTimers(config: Pick<RawConfig, 'server'>, add: Add): void {
  // A timer past 2^31 ms fires at once (Node clamps it to 1 ms): a long
  // drain would become none. A day covers any orchestrator's grace period.
  if (parseDuration(config.server.drainTimeout) > MAX_DRAIN_MS)
    add(['server', 'drainTimeout'], 'must be at most 24h')
  checkTimed(config.server.keepAliveTimeout, ['server', 'keepAliveTimeout'], add)
  checkTimed(config.server.sendTimeout, ['server', 'sendTimeout'], add)
  if (orNaN(() => parseDuration(config.server.sendTimeout)) === 0)
    add(
      ['server', 'sendTimeout'],
      'must be more than 0: a browser that stops reading would hold its upstream connection for ever',
    )
}

/** `server.headersTimeout` within `server.requestTimeout`. */
export function checkHeadersTimeout(config: Pick<RawConfig, 'server'>, add: Add): void {
  // Node's HTTP server refuses to start with a longer wait for the headers
  // than for the whole request, with a message naming neither option.
  const requestTimeout = orNaN(() => parseDuration(config.server.requestTimeout))
  const headersTimeout = orNaN(() => parseDuration(config.server.headersTimeout))
  if (requestTimeout > 0 && headersTimeout > requestTimeout)
    add(
      ['server', 'headersTimeout'],
      `must be at most server.requestTimeout (${config.server.requestTimeout}): the headers are part of the request`,
    )
}

/** Each listener's address, and the metrics port apart from the server's. */
export function checkListeners(config: Pick<RawConfig, 'server' | 'metrics'>, add: Add): void {
  const { metrics } = config
  const serverHost = listenHostProblem(config.server.host, 'server')
  if (serverHost !== undefined) add(['server', 'host'], serverHost)
  const metricsHost = metrics.enabled ? listenHostProblem(metrics.host, 'metrics') : undefined
  if (metricsHost !== undefined) add(['metrics', 'host'], metricsHost)
  if (metrics.enabled && metrics.port !== 0 && metrics.port === config.server.port) {
    add(['metrics', 'port'], 'must differ from server.port: /metrics stays off the public listener')
  }
}
