import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { HTTP_METHODS } from '../config/schema.js'
import type { RouteConfig } from '../config/types.js'
import { gatehouseError } from '../errors.js'

/** A proxy route's `methods`, as its route config carries it for the root hook. */
export interface AllowedMethods {
  readonly set: ReadonlySet<string>
  /** The `Allow` header of a 405 (RFC 9110 §10.2.1). */
  readonly header: string
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on a proxy route that accepts fewer methods than all; see `refuseUnlistedMethod`. */
    readonly allowedMethods?: AllowedMethods
  }
}

/** What the route's config carries, or `undefined` when the route takes every method. */
export function allowedMethods(route: RouteConfig): AllowedMethods | undefined {
  if (route.methods.length === HTTP_METHODS.length) return undefined
  return { set: new Set(route.methods), header: route.methods.join(', ') }
}

/**
 * The `onRequest` hook of a proxy route that lists its methods, added to
 * that route alone (see request-hygiene.ts), so it runs before any session
 * or token work: a method the route does not list gets `405` with `Allow`
 * (RFC 9110 §15.5.6). RFC 10017 §6.1.3.6: restricting methods per endpoint
 * narrows what a hijacked page can make the BFF send.
 */
export function refuseUnlistedMethod(allowed: AllowedMethods) {
  return function refuseUnlisted(
    request: FastifyRequest,
    reply: FastifyReply,
    done: HookHandlerDoneFunction,
  ) {
    if (allowed.set.has(request.method)) {
      done()
      return
    }
    reply.header('allow', allowed.header)
    done(gatehouseError('GATEHOUSE_ERR_METHOD_NOT_ALLOWED'))
  }
}
