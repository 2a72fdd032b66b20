import type { GatehouseConfig } from '../config/types.js'
import { networkCause } from '../network-cause.js'

/** How long the probe waits for `/healthz`: below Docker's HEALTHCHECK `--timeout`. */
const PROBE_TIMEOUT_MS = 2_000

/**
 * The `/healthz` URL of the instance this config describes, as seen from
 * inside its own container: a wildcard bind is probed on loopback.
 */
export function healthUrl(config: GatehouseConfig): string {
  const host = config.server.host
  const target =
    host === '0.0.0.0' || host === ''
      ? '127.0.0.1'
      : host === '::' || host === '[::]'
        ? '[::1]'
        : host.includes(':') && !host.startsWith('[')
          ? `[${host}]`
          : host
  return `http://${target}:${config.server.port}/healthz`
}

/** Probes the configured port's `/healthz`; resolves with what went wrong, or undefined when healthy. */
export async function probeHealth(config: GatehouseConfig): Promise<{ url: string; problem?: string }> {
  const url = healthUrl(config)
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS), redirect: 'manual' })
    await response.body?.cancel()
    return response.status === 200 ? { url } : { url, problem: `HTTP ${response.status}` }
  } catch (err) {
    const total = { ms: PROBE_TIMEOUT_MS, name: 'the probe budget' }
    return { url, problem: networkCause(err, { total }) ?? (err as Error).message }
  }
}
