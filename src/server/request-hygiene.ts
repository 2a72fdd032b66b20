import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { deferContinue } from '../guards/expect-continue.js'
import { refuseRepeatedHost } from '../guards/single-host.js'
import { refuseUnlistedMethod } from '../proxy/methods.js'
import { hooksOf } from './hooks-of.js'
import { refuseFaultyFraming } from './legacy-framing.js'
import { refuseMalformedTarget } from './request-target.js'

/**
 * The refusals that need no state, as the first hooks on every path: before
 * any cookie is opened or any code parses the target. Register it before the
 * cookie plugin, whose hook then runs after these.
 */
export const requestHygiene = fp(
  async function requestHygiene(app: FastifyInstance) {
    app.addHook('onRequest', refuseMalformedTarget)
    app.addHook('onRequest', refuseRepeatedHost)
    app.addHook('onRequest', refuseFaultyFraming)
    // Only on the routes that list their methods, with the list bound once:
    // a route-level hook, so it runs before the route's guard and costs the
    // other routes nothing.
    app.addHook('onRoute', (route) => {
      const allowed = route.config?.allowedMethods
      if (allowed) route.onRequest = [...hooksOf(route.onRequest), refuseUnlistedMethod(allowed)]
    })
    deferContinue(app)
  },
  { name: 'gatehouse-request-hygiene', fastify: '5.x' },
)
