import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    /** The sweep of idle connections while close() runs; null until close() begins. */
    draining: NodeJS.Timeout | null
  }
}

/**
 * Draining: once close() begins, answers in flight carry `Connection:
 * close`, and idle keep-alive sockets are closed as they go idle, so close()
 * ends when the last request does instead of when clients drop their
 * connections. The proxy reads `app.draining` to send its answers through
 * this plugin's hook.
 */
export const draining = fp(
  async function draining(app: FastifyInstance) {
    app.decorate('draining', null)
    app.addHook('preClose', (done) => {
      app.server.closeIdleConnections()
      const sweep = setInterval(() => app.server.closeIdleConnections(), 50)
      sweep.unref()
      app.draining = sweep
      done()
    })
    app.addHook('onSend', (_request, reply, payload, done) => {
      if (app.draining) reply.header('connection', 'close')
      done(null, payload)
    })
    app.addHook('onClose', (_app, done) => {
      if (app.draining) clearInterval(app.draining)
      done()
    })
  },
  { name: 'gatehouse-draining', fastify: '5.x' },
)
