/** What `frontends[].host` may be: a host name, matched whatever the port. */
export const FRONTEND_HOST_PATTERN = '^[A-Za-z0-9.-]+$'

const WITH_PORT = /^([A-Za-z0-9.-]+):\d{1,5}$/

/** The host name of `host: name:port`, or undefined when it has no port. */
export function withoutPort(host: string): string | undefined {
  return WITH_PORT.exec(host)?.[1]
}

/**
 * Why `value` is no `frontends[].host`. The pattern's own words ("expected
 * string to match …") do not say that a port is the problem, nor where one
 * that matters is written.
 */
export function frontendHostProblem(value: unknown): string {
  const name = typeof value === 'string' ? withoutPort(value) : undefined
  if (name === undefined) {
    return 'must be a host name such as staff.example.com: letters, digits, . and -, without a scheme, port or path'
  }
  return `${String(value)} has a port: a host is matched whatever the port, so write ${name} (the port the browser uses goes in publicUrl: https://${value})`
}
