import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { deferContinue } from '../guards/expect-continue.js'
import { refuseRepeatedHost } from '../guards/single-host.js'
import { refuseUnlistedMethod } from '../proxy/methods.js'
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
    // Before the cookie plugin's hook: a method the route refuses costs no session work.
    app.addHook('onRequest', refuseUnlistedMethod)
    deferContinue(app)
  },
  { name: 'gatehouse-request-hygiene', fastify: '5.x' },
)
