import { isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import ipaddr from 'ipaddr.js'

/**
 * The sign-in rate limit's key: the client's address, `request.ip`. That
 * is the socket's peer, or with `server.trustProxy` the address the proxy
 * in front reported (the last `X-Forwarded-For` entry, see
 * server/instance.ts). An IPv4 client counts per address; an IPv6 client
 * per /64, written `2001:db8:a:b::/64`, and an IPv4-mapped address
 * (`::ffff:198.51.100.7`) as its IPv4 address. Anything else there (a port,
 * `unknown`, a zone id, kilobytes of text from a client that reached the
 * gateway past the proxy) would be a key the client picks, one new counter
 * per value, so the peer's own address stands in. A key is canonical (one
 * per prefix, however it was written) and at most 24 characters.
 */
export function rateLimitKey(request: Pick<FastifyRequest, 'ip' | 'socket'>): string {
  const fromIp = addressKey(request.ip)
  if (fromIp !== undefined) return fromIp
  // Node appends the interface to a link-local peer's address (`fe80::1%eth0`):
  // the kernel's, not the client's, and outside the /64 the key keeps.
  const peer = request.socket.remoteAddress?.split('%')[0]
  // A socket already closed has no address; such a request is not answered anyway.
  return (peer !== undefined ? addressKey(peer) : undefined) ?? 'unknown'
}

/**
 * RFC 7421 §4 (and RFC 8981's privacy addresses): an IPv6 host is given a
 * whole /64 and picks the interface id at will, so a key per address would
 * let one client take a new budget, and a new counter in the store, per
 * request. Node's `isIP` decides what is an address; ipaddr.js, which
 * Fastify's proxy-addr also uses, reads its bits, since node:net gives no
 * way to.
 */
function addressKey(candidate: string): string | undefined {
  // isIP accepts a zone id (`fe80::1%anything`): text of the client's choosing.
  if (isIP(candidate) === 0 || candidate.includes('%')) return undefined
  const address = ipaddr.process(candidate)
  if (address instanceof ipaddr.IPv4) return address.toString()
  const network = new ipaddr.IPv6([...address.parts.slice(0, 4), 0, 0, 0, 0])
  return `${network.toRFC5952String()}/64`
}
