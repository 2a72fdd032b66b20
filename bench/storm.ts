import { Pool } from 'undici'
import type { DevIdp } from '../dev/idp.js'
import type { PeerProcess } from './peers.js'

export interface StormResult {
  readonly requests: number
  readonly succeeded: number
  /** Every distinct status answered, so a failed storm says how it failed. */
  readonly statuses: readonly number[]
  /** Refresh grants the IdP saw during the storm: the target is exactly 1. */
  readonly refreshGrants: number
  /** Rotated refresh tokens presented again: any would have revoked the grant. */
  readonly refreshReplays: number
  /** From the first request sent to the last answer read, ms. */
  readonly lastCompletedMs: number
  /** The IdP's own answer time for that refresh, as the gateway measured it, ms. */
  readonly idpRefreshMs: number
}

/**
 * The refresh storm: `count` concurrent calls, each on its own connection,
 * on a session whose access token has just expired. The gateway's clock is
 * moved past the expiry instead of waiting for it.
 */
export async function refreshStorm(options: {
  readonly idp: DevIdp
  readonly gateway: PeerProcess
  readonly cookie: string
  readonly path: string
  readonly count: number
  readonly accessTokenTtlMs: number
}): Promise<StormResult> {
  const { idp, gateway, count } = options
  const pool = new Pool(gateway.url, { connections: count })
  const headers = { cookie: options.cookie, 'x-csrf': '1' }
  try {
    const before = await refreshMetric(gateway)
    const grants = idp.stats.refreshGrants
    const replays = idp.stats.refreshReplays
    await gateway.advance(options.accessTokenTtlMs + 1_000)
    const started = performance.now()
    const statuses = await Promise.all(
      Array.from({ length: count }, async () => {
        const response = await pool.request({ path: options.path, method: 'GET', headers })
        await response.body.dump()
        return response.statusCode
      }),
    )
    const lastCompletedMs = performance.now() - started
    const after = await refreshMetric(gateway)
    const refreshes = after.count - before.count
    return {
      requests: count,
      succeeded: statuses.filter((status) => status === 200).length,
      statuses: [...new Set(statuses)],
      refreshGrants: idp.stats.refreshGrants - grants,
      refreshReplays: idp.stats.refreshReplays - replays,
      lastCompletedMs,
      idpRefreshMs: refreshes > 0 ? ((after.sum - before.sum) / refreshes) * 1000 : Number.NaN,
    }
  } finally {
    await pool.close()
  }
}

/** The gateway's `gatehouse_token_refresh_duration_seconds` sum and count. */
async function refreshMetric(gateway: PeerProcess): Promise<{ sum: number; count: number }> {
  if (!gateway.metricsUrl) throw new Error('the gateway peer runs without metrics')
  const text = await (await fetch(gateway.metricsUrl)).text()
  // Summed over every label set: the series carry the provider's name (`idp`).
  const read = (name: string) =>
    [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.eE+-]+)$`, 'gm'))].reduce(
      (sum, match) => sum + Number(match[1]),
      0,
    )
  return {
    sum: read('gatehouse_token_refresh_duration_seconds_sum'),
    count: read('gatehouse_token_refresh_duration_seconds_count'),
  }
}
