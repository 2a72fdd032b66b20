/**
 * The longest `returnTo`, counted as given and as kept: percent-encoded
 * (one `"` is `%22`, one `日` is `%E6%97%A5`). Kept in the login cookie, it
 * then leaves room for the rest of the sign-in under the browsers' 4096
 * bytes (the login route checks the cookie itself, for what else can grow).
 */
export const RETURN_TO_MAX = 2048

/**
 * Accepts only a relative path on this origin, so a login can never end on
 * another site (an open redirect, RFC 9700 §4.11). Returns the normalised
 * path, or `undefined` when the value must be refused.
 */
export function safeReturnTo(value: unknown, publicUrl: string): string | undefined {
  if (value === undefined || value === '') return '/'
  if (typeof value !== 'string' || value.length > RETURN_TO_MAX) return undefined
  // Browsers read `\` as `/` and drop tabs and newlines while parsing, so
  // `/\evil` and `/\t/evil` become `//evil`: refuse them before parsing.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what we refuse
  if (!value.startsWith('/') || value.startsWith('//') || /[\\\u0000-\u001f\u007f]/.test(value))
    return undefined
  let resolved: URL
  // Past the checks above, the value is a path with one leading `/`, which
  // the WHATWG parser resolves against the (validated) public URL by its
  // path states alone: it cannot fail, nor leave the origin (the property
  // test tries 5000 values). Both stay, so a change to those checks cannot
  // turn into a 500 or an open redirect.
  try {
    resolved = new URL(value, publicUrl)
    /* c8 ignore next 3 -- unreachable: see above */
  } catch {
    return undefined
  }
  /* c8 ignore next -- unreachable: see above */
  if (resolved.origin !== new URL(publicUrl).origin) return undefined
  // Dot segments can collapse into a leading `//` (`/..//evil.com` becomes
  // `//evil.com`), which a browser reads as another host.
  if (resolved.pathname.startsWith('//')) return undefined
  const path = `${resolved.pathname}${resolved.search}${resolved.hash}`
  return path.length > RETURN_TO_MAX ? undefined : path
}

/** A `safeReturnTo` path with one query parameter set, fragment kept. */
export function withQuery(path: string, name: string, value: string): string {
  const url = new URL(path, 'http://gatehouse.invalid')
  url.searchParams.set(name, value)
  return `${url.pathname}${url.search}${url.hash}`
}
