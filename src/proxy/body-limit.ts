import { Transform, type TransformCallback } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import { gatehouseError } from '../errors.js'

/**
 * Enforces a route's body limit without buffering: a declared
 * Content-Length over the limit is refused before anything is forwarded;
 * a chunked body is counted as it streams and cut off at the limit.
 */
export function bodyLimiter(limit: number) {
  return function enforce(request: FastifyRequest): void {
    const declared = request.headers['content-length']
    if (declared !== undefined && Number(declared) > limit)
      throw gatehouseError('GATEHOUSE_ERR_PAYLOAD_TOO_LARGE')
    const body = request.body as NodeJS.ReadableStream | undefined
    if (declared !== undefined || !body || typeof body.pipe !== 'function') return
    let seen = 0
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done: TransformCallback) {
        seen += chunk.length
        // The catalogue's 413 travels as the stream error, so the upstream
        // error handler answers 413, not 502.
        if (seen > limit) done(gatehouseError('GATEHOUSE_ERR_PAYLOAD_TOO_LARGE'))
        else done(null, chunk)
      },
    })
    // The limit can trip on the first chunk, before undici has taken the
    // stream and listened for its errors; an 'error' nobody listens to is
    // an uncaught exception that ends the process. undici still sees the
    // error (the stream is destroyed with it) and answers 413 through the
    // upstream error handler.
    counter.on('error', () => {})
    request.body = body.pipe(counter)
  }
}
