import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'

/** A route's public prefix and what the upstream calls it, both `''` for a root. */
export interface Prefixes {
  readonly prefix: string
  readonly rewritePrefix: string
}

/**
 * The upstream path of a request target that starts with the route's prefix
 * as written, or `undefined` when it needs @fastify/http-proxy's own reading:
 * an escaped prefix (`/%61pi`), or a rest that begins with `//`, which a URL
 * parser reads as another host and http-proxy refuses. What this returns is
 * what http-proxy computes for the same target, given the route's path check
 * (path-check.ts) has run: its traversal and same-origin checks cannot fail
 * on a path that check let through, so they are not run again.
 */
export function plainDestination(url: string, { prefix, rewritePrefix }: Prefixes): string | undefined {
  if (!url.startsWith(prefix)) return undefined
  const end = url.indexOf('?', prefix.length)
  const rest = end === -1 ? url.slice(prefix.length) : url.slice(prefix.length, end)
  if (rest === '') return rewritePrefix || '/'
  if (rest.charCodeAt(0) !== 47 || rest.charCodeAt(1) === 47) return undefined
  return rewritePrefix + rest
}

/**
 * @fastify/http-proxy computes each request's destination by parsing three
 * URLs and validating the path again, about 2 µs of a proxied request that
 * costs about 70 µs on the bench machine (docs/performance.md). Its routes keep its handler for every
 * target `plainDestination` leaves to it, and take the plain ones straight to
 * `forward`, with the destination http-proxy would have passed. Installed as
 * an `onRoute` hook of the route's scope before http-proxy registers, so it
 * sees exactly http-proxy's routes; a route prefix with parameters or
 * wildcards, one under an enclosing scope's prefix, or a router that folds
 * case or slashes, keeps http-proxy's reading for every request.
 */
export function shortcutPlainTargets(
  scope: FastifyInstance,
  prefixes: Prefixes,
  forward: (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply, dest: string) => void,
  isOurs: (route: RouteOptions) => boolean,
): void {
  const router = scope.initialConfig.routerOptions ?? {}
  if (
    /[:*]/.test(prefixes.prefix) ||
    router.caseSensitive === false ||
    router.ignoreDuplicateSlashes === true
  )
    return
  scope.addHook('onRoute', (route) => {
    // Under a Fastify prefix of an enclosing scope, http-proxy strips more than the route's path.
    if (!isOurs(route) || route.prefix !== prefixes.prefix) return
    const proxyHandler = route.handler
    route.handler = function proxied(request, reply) {
      const dest = plainDestination(request.url, prefixes)
      if (dest === undefined) return proxyHandler.call(this, request, reply)
      forward.call(this, request, reply, dest)
    }
  })
}
