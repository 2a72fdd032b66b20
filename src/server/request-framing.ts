import type { Socket } from 'node:net'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { gatehouseError } from '../errors.js'

const faulty = Symbol('gatehouse.faultyFraming')

type Marked = Socket & { [faulty]?: true }

/** `chunked` alone, any case, with the optional whitespace around a list's member. */
const CHUNKED_ONLY = /^[ \t]*chunked[ \t]*$/i

/**
 * Refuses a request whose body the gateway cannot pass on as it was sent.
 *
 * RFC 9112 §6.1: an HTTP/1.0 message with `Transfer-Encoding` must be
 * treated as having faulty framing, and the connection closed after it.
 * Node reads such a body as chunked, where an HTTP/1.0 hop in front may
 * have read it by `Content-Length` or up to the close: the bytes after it
 * would be a second request one side never saw (request smuggling). So the
 * request is refused with `Connection: close`, and so is every request
 * already read from the same connection behind it, before any is forwarded.
 *
 * A coding before the final `chunked` (`gzip, chunked`): Node takes the
 * chunks off and hands over the body still in that coding, and the
 * upstream, to which `Transfer-Encoding` does not go (it is hop-by-hop),
 * would read gzip as the body itself. §6.1 answers a coding a server does
 * not understand with 501; no browser sends one.
 */
export function refuseFaultyFraming(
  request: FastifyRequest,
  reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  const raw = request.raw
  const codings = raw.headers['transfer-encoding']
  const socket = raw.socket as Marked
  if (socket[faulty] !== true) {
    if (codings === undefined || (raw.httpVersionMinor !== 0 && CHUNKED_ONLY.test(codings))) {
      done()
      return
    }
    if (raw.httpVersionMinor !== 0 || raw.httpVersionMajor !== 1) {
      // The chunks still frame the body, so Node reads it to its end and
      // the connection goes on; a last coding other than chunked is one
      // Node's parser refuses, closing the connection, after this answer.
      done(gatehouseError('GATEHOUSE_ERR_TRANSFER_CODING_UNSUPPORTED'))
      return
    }
  }
  socket[faulty] = true
  reply.header('connection', 'close')
  done(gatehouseError('GATEHOUSE_ERR_INVALID_FRAMING'))
}
