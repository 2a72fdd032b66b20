import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { continueFirst, deferContinue } from '../guards/expect-continue.js'
import { refuseRepeatedHost } from '../guards/single-host.js'
import { refuseUnlistedMethod } from '../proxy/methods.js'
import { hooksOf } from './hooks-of.js'
import { refuseFaultyFraming } from './request-framing.js'
import { refuseMalformedTarget } from './request-target.js'

/**
 * The refusals that need no state, as the first hooks on every path: before
 * any cookie is opened or any code parses the target. Register it before the
 * cookie plugin, whose hook then runs after these.
 */
export const requestHygiene = fp(
  async function requestHygiene(app: FastifyInstance) {
    // Framing first: any other refusal of a request whose framing is
    // faulty would keep the connection open, and the bytes Node read as
    // its chunked body's end would start the next request (smuggling).
    app.addHook('onRequest', refuseFaultyFraming)
    app.addHook('onRequest', refuseMalformedTarget)
    app.addHook('onRequest', refuseRepeatedHost)
    // Only on the routes that list their methods, with the list bound once:
    // a route-level hook, so it runs before the route's guard and costs the
    // other routes nothing.
    app.addHook('onRoute', (route) => {
      const allowed = route.config?.allowedMethods
      if (allowed) route.onRequest = [...hooksOf(route.onRequest), refuseUnlistedMethod(allowed)]
      // A route that sends the 100 itself (every proxy route) gets no
      // preParsing hook at all, and Fastify then skips its hook runner,
      // which costs a request closures of its own even when the hook has
      // nothing to do. Not-found answers read no body, so they ask for none.
      if (!route.config?.defersContinue) route.preParsing = [...hooksOf(route.preParsing), continueFirst]
    })
    deferContinue(app)
  },
  { name: 'gatehouse-request-hygiene', fastify: '5.x' },
)
