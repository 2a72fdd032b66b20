import type { FastifyInstance } from 'fastify'

export interface Readiness {
  /** Resolves when this instance can serve logins and API calls. */
  check(): Promise<{ ready: boolean; checks: Record<string, 'ok' | string> }>
}

/** Liveness says the process runs; readiness says it can do its job. */
export async function healthRoutes(app: FastifyInstance, readiness: Readiness) {
  app.get('/healthz', async (_request, reply) => reply.send({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const { ready, checks } = await readiness.check()
    if (!ready) reply.code(503).header('retry-after', '5')
    return reply.send({ status: ready ? 'ready' : 'not_ready', checks })
  })
}
