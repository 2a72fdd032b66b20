import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { gatehouseError } from '../errors.js'

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
 * connections. A request that arrives meanwhile, on a connection still
 * open, is answered `503 shutting_down` with `Retry-After` by this plugin's
 * first hook, before any cookie or session is read: the load balancer sends
 * it to another instance. The proxy reads `app.draining` to send its
 * answers through this plugin's onSend hook.
 *
 * Register it right after the stateless refusals, before the cookies.
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
    // Fastify's own answer to these (`return503OnClosing`, turned off in
    // instance.ts) came before any hook ran: a body of another shape than
    // every other error's, and no metric, access line or span.
    app.addHook('onRequest', (_request, _reply, done) => {
      if (app.draining) done(gatehouseError('GATEHOUSE_ERR_SHUTTING_DOWN'))
      else done()
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
