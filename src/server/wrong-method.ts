import type { IncomingMessage } from 'node:http'
import type { FastifyRequest } from 'fastify'
import { HTTP_METHODS } from '../config/schema.js'
import { FRONTEND_CONSTRAINT } from './frontend-select.js'

const KNOWN: ReadonlySet<string> = new Set(HTTP_METHODS)

/**
 * For a request the router found no route for: the methods it serves at
 * the same path, for the same frontend, as an `Allow` header (RFC 9110
 * §10.2.1), or `undefined` when it serves none and the answer is a 404.
 * Only the gateway's own routes can have any. A proxy route takes every
 * one of `HTTP_METHODS` (the ones it does not list it refuses itself), so
 * a request it would serve never gets here, a catch-all `/` included: its
 * methods under `/auth` stay its own. A method outside `HTTP_METHODS`
 * (TRACE, WebDAV's) is unknown to every route, and stays a 404.
 *
 * Asked of the router itself (`findRoute` runs its `find`), so the path
 * is read as it reads it, percent-decoding and frontends included: a 405
 * tells no more than asking with one of the `Allow` methods would, and
 * another frontend's routes stay a 404. Nothing else is read: no cookie,
 * no session, no anti-forgery header, no sign-in budget.
 */
export function servedMethods(
  request: FastifyRequest,
  frontendOf: ((req: IncomingMessage) => string) | undefined,
): string | undefined {
  if (!KNOWN.has(request.method)) return undefined
  const constraints = frontendOf && { [FRONTEND_CONSTRAINT]: frontendOf(request.raw) }
  const served = HTTP_METHODS.filter(
    (method) =>
      request.server.findRoute({ method, url: request.url, ...(constraints && { constraints }) }) !== null,
  )
  return served.length === 0 ? undefined : served.join(', ')
}
