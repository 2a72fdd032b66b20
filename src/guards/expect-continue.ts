import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest, preParsingHookHandler } from 'fastify'

const waiting = Symbol('gatehouse.expectContinue')

type Waiting = IncomingMessage & { [waiting]?: boolean }

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route sends `100 Continue` itself, once it has decided to read the body. */
    readonly defersContinue?: boolean
  }
}

/**
 * `Expect: 100-continue` (RFC 9110 §10.1.1) lets a client hold a large body
 * back until the server wants it. Node would answer 100 the moment the
 * headers arrive; instead the request is marked and routed as usual, and
 * the 100 goes out when a route is about to read the body. A proxy route
 * does so only after its guard, so a request it refuses (401, 403, a
 * declared body over the limit: 413) is answered before any of the body
 * moves, and Node closes that connection rather than read the body after.
 */
export function deferContinue(app: FastifyInstance): void {
  app.server.on('checkContinue', (req: Waiting, res: ServerResponse) => {
    req[waiting] = true
    app.server.emit('request', req, res)
  })
}

/**
 * The preParsing hook of the routes that read a body without deciding
 * first (`defersContinue` unset): the 100 goes out before the body is read.
 */
export const continueFirst: preParsingHookHandler = (request, reply, payload, done) => {
  sendContinue(request, reply)
  done(null, payload)
}

/** Tells a client waiting on `Expect: 100-continue` to send its body; once, and only if it waits. */
export function sendContinue(request: FastifyRequest, reply: FastifyReply): void {
  const raw = request.raw as Waiting
  if (raw[waiting] !== true) return
  raw[waiting] = false
  reply.raw.writeContinue()
}
