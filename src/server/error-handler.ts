import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import {
  causeName,
  type ErrorCode,
  errorCatalogue,
  gatehouseError,
  isGatehouseError,
  retryAfterOf,
} from '../errors.js'

/**
 * Every error leaves as `{ error, message }` JSON with the catalogue's
 * status; nothing else about it, least of all a stack, reaches the client.
 */
export const errorAnswers = fp(
  async function errorAnswers(app: FastifyInstance) {
    app.setErrorHandler(function handle(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
      return answerError(err, request, reply)
    })

    app.setNotFoundHandler(function notFound(_request, reply) {
      reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff')
      const { status, error, message } = errorCatalogue.GATEHOUSE_ERR_NOT_FOUND
      return reply.code(status).send({ error, message })
    })
  },
  { name: 'gatehouse-errors', fastify: '5.x' },
)

function answerError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const known = isGatehouseError(err)
  if (!known && (err.statusCode ?? 500) < 500) {
    // Fastify's own 4xx (a bad body, a too-large payload): its message is
    // about the request, not our internals.
    return reply
      .code(err.statusCode!)
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .send({ error: 'bad_request', message: err.message })
  }
  const code: ErrorCode = known ? err.code : 'GATEHOUSE_ERR_INTERNAL'
  const spec = errorCatalogue[code]
  if (!known) request.log.error({ err }, 'unhandled error')
  else if (spec.status >= 500) request.log.warn({ code, cause: causeName(err) }, spec.error)
  if (code === 'GATEHOUSE_ERR_SESSION_EXPIRED') request.session.delete()
  const retryAfter = retryAfterOf(code)
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter))
  return reply
    .code(spec.status)
    .header('cache-control', 'no-store')
    .header('x-content-type-options', 'nosniff')
    .send({ error: spec.error, message: known ? err.message : spec.message })
}

/**
 * Fastify's `frameworkErrors`: what its router refuses before any route or
 * hook runs. A path that does not percent-decode (`%zz`) is a path an
 * upstream could read differently, so it is refused like one; Fastify's own
 * body would also echo the path back. Anything else is answered like any error.
 */
export function frameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  // Called directly: the request Fastify builds here carries the error
  // handler it had before setErrorHandler ran, so reply.send(err) would
  // answer with Fastify's default body.
  answerError(
    err.code === 'FST_ERR_BAD_URL' ? (gatehouseError('GATEHOUSE_ERR_INVALID_PATH') as FastifyError) : err,
    request,
    reply,
  )
}
