/**
 * The methods the HTTP semantic conventions list (RFC 9110's, PATCH and
 * QUERY). Node's parser accepts some thirty more (`PROPFIND`, `M-SEARCH`,
 * `PURGE`, …); a label, a span name or an attribute that took whatever the
 * client sent would let it choose among that many values per route.
 */
export const KNOWN_METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
  'QUERY',
])

/** The method as a metric label or span attribute: itself when listed, else `_OTHER`, as the conventions require. */
export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : '_OTHER'
}
