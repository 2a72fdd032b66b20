import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { gatehouseError } from '../errors.js'

/**
 * Targets no URL parser can misread: RFC 3986 `pchar`, `/`, `?` and `%`.
 * Nearly every request is one of these and needs nothing more.
 */
const PLAIN_TARGET = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*$/

const BASE_HOST = 'gatehouse.invalid'
const BASE = `http://${BASE_HOST}`

/**
 * True for a request target in origin-form (RFC 9112 §3.2.1: an absolute
 * path, then an optional query) that every URL parser on the way reads as a
 * path on this host. Refused: the asterisk and absolute forms, which no
 * route serves; a fragment, which a client never sends (RFC 9110 §4.2.4)
 * and which `ws` and others throw on; and a target that a WHATWG parser
 * reads as an authority (`//host/…`, `/\host:99999/`, where `\` counts as
 * `/`), which URL constructors throw on when its port or host is bad.
 */
export function isOriginForm(url: string): boolean {
  if (PLAIN_TARGET.test(url)) {
    const second = url.charCodeAt(1)
    return second !== 47 // `//` is an authority to a URL parser
  }
  if (url.charCodeAt(0) !== 47 || url.includes('#')) return false
  const second = url.charCodeAt(1)
  if (second === 47 || second === 92) return false
  try {
    return new URL(url, BASE).host === BASE_HOST
  } catch {
    return false
  }
}

/**
 * A hook on every path, after the framing check only: a request target that cannot be parsed as
 * a path gets `400 invalid_path` before anything reads it. An anonymous
 * client sends these at will, so the refusal is logged at `debug` only; it
 * used to surface as a 500 with an error-level stack trace.
 */
export function refuseMalformedTarget(
  request: FastifyRequest,
  _reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  if (isOriginForm(request.url)) {
    done()
    return
  }
  request.log.debug('request target is not an origin-form path; refused')
  done(
    gatehouseError(
      'GATEHOUSE_ERR_INVALID_PATH',
      'The request target must be a path that starts with a single /, without a fragment (RFC 9112 §3.2.1).',
    ),
  )
}
