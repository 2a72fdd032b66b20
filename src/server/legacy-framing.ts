import type { Socket } from 'node:net'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { gatehouseError } from '../errors.js'

const faulty = Symbol('gatehouse.faultyFraming')

type Marked = Socket & { [faulty]?: true }

/**
 * RFC 9112 §6.1: an HTTP/1.0 message with `Transfer-Encoding` must be
 * treated as having faulty framing, and the connection closed after it.
 * Node reads such a body as chunked, where an HTTP/1.0 hop in front may
 * have read it by `Content-Length` or up to the close: the bytes after it
 * would be a second request one side never saw (request smuggling). So the
 * request is refused with `Connection: close`, and so is every request
 * already read from the same connection behind it, before any is forwarded.
 */
export function refuseFaultyFraming(
  request: FastifyRequest,
  reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  const raw = request.raw
  const socket = raw.socket as Marked
  if (
    socket[faulty] !== true &&
    (raw.httpVersionMinor !== 0 ||
      raw.httpVersionMajor !== 1 ||
      raw.headers['transfer-encoding'] === undefined)
  ) {
    done()
    return
  }
  socket[faulty] = true
  reply.header('connection', 'close')
  done(gatehouseError('GATEHOUSE_ERR_INVALID_FRAMING'))
}
