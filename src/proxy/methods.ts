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
 * A root `onRequest` hook, so it runs before the session cookie is even
 * opened: a method the matched proxy route does not list gets `405` with
 * `Allow` (RFC 9110 §15.5.6) before any session or token work. RFC 10017
 * §6.1.3.6: restricting methods per endpoint narrows what a hijacked page
 * can make the BFF send.
 */
export function refuseUnlistedMethod(
  request: FastifyRequest,
  reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  const allowed = request.routeOptions.config.allowedMethods
  if (allowed === undefined || allowed.set.has(request.method)) {
    done()
    return
  }
  reply.header('allow', allowed.header)
  done(gatehouseError('GATEHOUSE_ERR_METHOD_NOT_ALLOWED'))
}
