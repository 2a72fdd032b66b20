import { isIP } from 'node:net'

/** A DNS name (RFC 1123 §2.1), `_` too as container runtimes name services with it, and a trailing dot. */
const HOST_NAME =
  /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/

/**
 * Why no socket can listen on `host` (`server.host`, `metrics.host`), or
 * undefined. Node hands any text that is not an IP address to getaddrinfo,
 * and a start then fails with "getaddrinfo ENOTFOUND [::1]", naming neither
 * the option nor the line. `section` names the port's option.
 */
export function listenHostProblem(host: string, section: string): string | undefined {
  // Empty: Node listens on every interface, as for `::`.
  if (host === '' || isIP(host) !== 0) return undefined
  const bracketed = /^\[(.*)\]$/.exec(host)?.[1]
  if (bracketed !== undefined && isIP(bracketed) === 6)
    return `is an IPv6 address in brackets, as a URL writes it; write it without them: ${bracketed}`
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(host)) {
    return 'is a URL; write the address alone, e.g. 0.0.0.0'
  }
  const withPort = /^(.*):\d+$/.exec(host)?.[1]
  if (withPort !== undefined && (isIP(withPort) === 4 || HOST_NAME.test(withPort)))
    return `holds a port; write the address alone (${withPort}) and the port in ${section}.port`
  if (HOST_NAME.test(host)) return undefined
  return 'must be an IP address (0.0.0.0, ::, 127.0.0.1) or a host name'
}
