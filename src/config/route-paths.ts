/**
 * What makes a `routes[].rewritePath` mean something else to the upstream
 * than it says: it is put before the rest of every request's path as
 * written, so the upstream reads it inside a request target it did not
 * write. `undefined` when it is a plain path.
 */
export function rewritePathProblem(rewritePath: string): string | undefined {
  if (!rewritePath.startsWith('/')) return 'must start with /'
  if (/[?#]/.test(rewritePath))
    return "must not hold ? or #: every request's own path is put after it, and would become part of a query or fragment; write ? as %3F and # as %23 if the upstream's path holds them"
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\s\x00-\x1f\x7f]/.test(rewritePath) || (rewritePath.includes('\\') && !rewritePath.startsWith('/\\')))
    return 'must not hold spaces, control characters or \\, which some upstreams read as /'
  let decoded: string
  try {
    decoded = decodeURIComponent(rewritePath)
  } catch {
    return 'holds a % that starts no valid %-escape (two hex digits, of UTF-8 text): write % itself as %25'
  }
  // An upstream that decodes before it routes reads the escapes too. A
  // backslash is a slash to WHATWG URL parsers (`new URL('/\\x', base)`).
  if (/^[/\\]{2}/.test(decoded))
    return "must not start with // or /\\ (nor their %-escapes): the upstream would read what follows as another server's name (RFC 3986 §4.2), not a path"
  if (decoded.split(/[/\\]/).some((segment) => segment === '.' || segment === '..'))
    return 'must not hold a . or .. segment (nor %2e): the upstream would resolve it (RFC 3986 §5.2.4) and serve another path than the one written'
  return undefined
}
