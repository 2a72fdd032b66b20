/**
 * The session cookie is `Priority=High` so that a browser purging an
 * overfull jar (Chromium: past 180 cookies a site) drops an upstream's
 * cookies before it: an upstream that gave its own cookies the same
 * priority could still push it out, and sign the user out. Its
 * `Set-Cookie` lines lose that attribute, and the cookie takes the
 * browser's default (medium); `Low` and `Medium` pass as written.
 *
 * An attribute is read as RFC 6265bis §5.7 and Chromium read it: after
 * the first `;`, split at `;`, the name before the first `=`, both
 * trimmed and compared without case.
 */
export function withoutHighPriority(line: string): string {
  if (!MENTIONS_PRIORITY.test(line)) return line
  const parts = line.split(';')
  const kept = parts.filter((part, i) => i === 0 || !isHighPriority(part))
  return kept.length === parts.length ? line : kept.join(';')
}

const MENTIONS_PRIORITY = /priority/i

function isHighPriority(attribute: string): boolean {
  const eq = attribute.indexOf('=')
  if (eq === -1) return false
  return (
    attribute.slice(0, eq).trim().toLowerCase() === 'priority' &&
    attribute
      .slice(eq + 1)
      .trim()
      .toLowerCase() === 'high'
  )
}
