import type { Socket } from 'node:net'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { type GatehouseError, gatehouseError } from '../errors.js'

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
  const refusal = framingRefusal(request, reply)
  if (refusal) done(refusal)
  else done()
}

/**
 * The refusal `refuseFaultyFraming` makes, for an answer made before any
 * hook runs (Fastify's router refusing a path): that answer, too, must
 * close a connection whose framing is faulty. Sets `Connection: close`
 * on `reply` when it does.
 */
export function framingRefusal(request: FastifyRequest, reply: FastifyReply): GatehouseError | undefined {
  const raw = request.raw
  const codings = raw.headers['transfer-encoding']
  const socket = raw.socket as Marked
  if (socket[faulty] !== true) {
    // HTTP/0.9 and 2.0 request lines are older or foreign framing to an
    // HTTP/1.1 hop in front too, and get HTTP/1.0's answer.
    const http11 = raw.httpVersionMajor === 1 && raw.httpVersionMinor >= 1
    if (codings === undefined || (http11 && CHUNKED_ONLY.test(codings))) return undefined
    // The chunks still frame the body, so Node reads it to its end and
    // the connection goes on; a last coding other than chunked is one
    // Node's parser refuses, closing the connection, after this answer.
    if (http11) return gatehouseError('GATEHOUSE_ERR_TRANSFER_CODING_UNSUPPORTED')
  }
  socket[faulty] = true
  reply.header('connection', 'close')
  return gatehouseError('GATEHOUSE_ERR_INVALID_FRAMING')
}
