import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { gatehouseError } from '../errors.js'

/**
 * RFC 9112 §3.2: a request with more than one Host field line gets 400.
 * Node keeps the first and drops the rest from `headers`, so a gateway that
 * read one Host and an upstream or cache that read the other would disagree
 * on the target; only `rawHeaders` still shows both. Runs on every request,
 * so it compares lengths before it lowercases anything.
 */
export function refuseRepeatedHost(
  request: FastifyRequest,
  _reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  const raw = request.raw.rawHeaders
  let seen = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length !== 4 || name.toLowerCase() !== 'host') continue
    if (seen) {
      done(gatehouseError('GATEHOUSE_ERR_DUPLICATE_HOST'))
      return
    }
    seen = true
  }
  done()
}
