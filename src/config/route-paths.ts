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

/**
 * RFC 3986 `pchar` but `%`, and `/`; `:` and `*` are the router's syntax
 * (`ROUTER_SYNTAX`), and `?`, `#` and whitespace another rule's.
 */
const UNESCAPED = /^[A-Za-z0-9\-._~!$&'()+,;=@/:*?#\s]*$/

/**
 * A route path, or a frontend's pathPrefix, with a `%` or a character a
 * browser sends escaped. Fastify's router (find-my-way) registers a `%`
 * as the character itself, and matches a request's path after decoding
 * its escapes: `/files/a%20b` is looked up as `/files/a b`. A route
 * written decoded (`/café`) matches, and is then put in the upstream's
 * path as written (`rewritePath` defaults to it), where `é` cannot go:
 * the request failed with a bare 400.
 */
export function escapedPathProblem(path: string): string | undefined {
  if (UNESCAPED.test(path)) return undefined
  return "must hold only the characters a URL path carries unescaped (letters, digits, / and - . _ ~ ! $ & ' ( ) + , ; = @), no % or character that needs one (a space, é): a route is matched against the request's path decoded and sent upstream as written, so a % in it matches no request, and a character that needs one cannot be sent. A shorter prefix (/files, for /files/a%20b) serves what follows it as the browser sent it"
}
