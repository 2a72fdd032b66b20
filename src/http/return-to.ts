/**
 * Accepts only a relative path on this origin, so a login can never end on
 * another site (an open redirect, RFC 9700 §4.11). Returns the normalised
 * path, or `undefined` when the value must be refused.
 */
export function safeReturnTo(value: unknown, publicUrl: string): string | undefined {
  if (value === undefined || value === '') return '/'
  if (typeof value !== 'string' || value.length > 2048) return undefined
  // Browsers read `\` as `/` and drop tabs and newlines while parsing, so
  // `/\evil` and `/\t/evil` become `//evil`: refuse them before parsing.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what we refuse
  if (!value.startsWith('/') || value.startsWith('//') || /[\\\u0000-\u001f\u007f]/.test(value))
    return undefined
  let resolved: URL
  try {
    resolved = new URL(value, publicUrl)
  } catch {
    return undefined
  }
  if (resolved.origin !== new URL(publicUrl).origin) return undefined
  // Dot segments can collapse into a leading `//` (`/..//evil.com` becomes
  // `//evil.com`), which a browser reads as another host.
  if (resolved.pathname.startsWith('//')) return undefined
  return `${resolved.pathname}${resolved.search}${resolved.hash}`
}

/** A `safeReturnTo` path with one query parameter set, fragment kept. */
export function withQuery(path: string, name: string, value: string): string {
  const url = new URL(path, 'http://gatehouse.invalid')
  url.searchParams.set(name, value)
  return `${url.pathname}${url.search}${url.hash}`
}
