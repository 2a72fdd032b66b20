import { isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'

/**
 * The sign-in rate limit's key: the client's address, `request.ip`. That
 * is the socket's peer, or with `server.trustProxy` the address the proxy
 * in front reported (the last `X-Forwarded-For` entry, see
 * server/instance.ts). Anything else there (a port, `unknown`, a zone id,
 * kilobytes of text from a client that reached the gateway past the proxy)
 * would be a key the client picks, one new counter per value, so the peer's
 * own address stands in: never longer than an IPv6 address (45 characters).
 */
export function rateLimitKey(request: Pick<FastifyRequest, 'ip' | 'socket'>): string {
  const ip = request.ip
  if (isIP(ip) !== 0 && !ip.includes('%')) return ip
  // A socket already closed has no address; such a request is not answered anyway.
  return request.socket.remoteAddress ?? 'unknown'
}
