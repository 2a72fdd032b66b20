import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { causeName, type ErrorCode, errorCatalogue, isGatehouseError, retryAfterOf } from '../errors.js'

/**
 * Every error leaves as `{ error, message }` JSON with the catalogue's
 * status; nothing else about it, least of all a stack, reaches the client.
 */
export function installErrorHandling(app: FastifyInstance, onStoreError?: () => void): void {
  app.setErrorHandler(function handle(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
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
    if (code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE') onStoreError?.()
    const retryAfter = retryAfterOf(code)
    if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter))
    return reply
      .code(spec.status)
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .send({ error: spec.error, message: known ? err.message : spec.message })
  })

  app.setNotFoundHandler(function notFound(_request, reply) {
    reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff')
    const { status, error, message } = errorCatalogue.GATEHOUSE_ERR_NOT_FOUND
    return reply.code(status).send({ error, message })
  })
}
