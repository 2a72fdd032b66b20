import { escapedLine } from '../config/errors.js'
import { networkCause } from '../network-cause.js'
import type { ListenAddress } from './listen-address.js'

/** How long the probe waits for `/healthz`: below Docker's HEALTHCHECK `--timeout`. */
const PROBE_TIMEOUT_MS = 2_000
/** Longest URL a verdict shows: a host name is at most 253 characters (RFC 1035 §2.3.4). */
const MAX_URL = 300
/** Longest cause a verdict shows; a real one (`ECONNREFUSED`, `HTTP 503`) is far shorter. */
const MAX_PROBLEM = 300

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

/**
 * The probe's verdict as the line `gatehouse health` prints, `healthy: <url>`
 * or `unhealthy: <url>: <cause>`. The host is whatever the file or a
 * variable says, and a cause may quote it: both are escaped and bounded
 * as a config problem's line is (config/errors.ts), or an escape sequence
 * in the host would act on the terminal of whoever runs the probe.
 */
export function healthVerdict({ url, problem }: { url: string; problem?: string }): string {
  const shown = escapedLine(url, MAX_URL)
  return problem === undefined
    ? `healthy: ${shown}`
    : `unhealthy: ${shown}: ${escapedLine(problem, MAX_PROBLEM)}`
}
