import { networkCause } from '../network-cause.js'
import type { ListenAddress } from './listen-address.js'

/** How long the probe waits for `/healthz`: below Docker's HEALTHCHECK `--timeout`. */
const PROBE_TIMEOUT_MS = 2_000

/**
 * The `/healthz` URL of an instance listening at `server`, as seen from
 * inside its own container: a wildcard bind is probed on loopback.
 */
export function healthUrl(server: ListenAddress): string {
  const host = server.host
  const target =
    host === '0.0.0.0' || host === ''
      ? '127.0.0.1'
      : host === '::' || host === '[::]'
        ? '[::1]'
        : host.includes(':') && !host.startsWith('[')
          ? `[${host}]`
          : host
  return `http://${target}:${server.port}/healthz`
}

/** Probes the configured port's `/healthz`; resolves with what went wrong, or undefined when healthy. */
export async function probeHealth(server: ListenAddress): Promise<{ url: string; problem?: string }> {
  const url = healthUrl(server)
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS), redirect: 'manual' })
    await response.body?.cancel()
    return response.status === 200 ? { url } : { url, problem: `HTTP ${response.status}` }
  } catch (err) {
    const total = { ms: PROBE_TIMEOUT_MS, name: 'the probe budget' }
    return { url, problem: networkCause(err, { total }) ?? (err as Error).message }
  }
}
