import type { FastifyInstance } from 'fastify'
import { type ErrorCode, retryAfterOf } from '../errors.js'

/** One readiness check that failed: what the catalogue calls it, and why, for operators. */
export interface ReadinessFailure {
  readonly code: ErrorCode
  readonly detail: string
  /**
   * Reported, but the instance stays in rotation (`status: degraded`, 200):
   * for a fault every instance shares, where taking them all out would
   * only hide the clear error page behind a load balancer's.
   */
  readonly degraded?: boolean
}

export interface Readiness {
  /** Resolves with one entry per check: `ok`, or the failure that keeps this instance out of rotation. */
  check(): Promise<Record<string, 'ok' | ReadinessFailure>>
}

/** Liveness says the process runs; readiness says it can do its job. */
export async function healthRoutes(app: FastifyInstance, readiness: Readiness) {
  app.get('/healthz', async (_request, reply) => reply.send({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const results = await readiness.check()
    const checks: Record<string, string> = {}
    // A load balancer that honours Retry-After should come back when the
    // slowest failing part is expected back, so the longest catalogue value
    // wins (an incompatible IdP waits for a config change, a store blip doesn't).
    let retryAfter: number | undefined
    let degraded = false
    for (const [name, result] of Object.entries(results)) {
      if (result === 'ok') {
        checks[name] = 'ok'
        continue
      }
      checks[name] = result.detail
      if (result.degraded) degraded = true
      else retryAfter = Math.max(retryAfter ?? 0, retryAfterOf(result.code) ?? 0)
    }
    if (retryAfter !== undefined) reply.code(503).header('retry-after', String(retryAfter))
    const status = retryAfter !== undefined ? 'not_ready' : degraded ? 'degraded' : 'ready'
    return reply.send({ status, checks })
  })
}
