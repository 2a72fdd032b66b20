/**
 * Recognises the cookies Gatehouse owns (the session cookie and the
 * login-state cookies, one per sign-in, named by a common start) under
 * every spelling that a browser or our own cookie parser could take for them. One matcher decides for both directions: what
 * a client's `Cookie` header must not carry upstream, and what an
 * upstream's `Set-Cookie` must not plant in the browser.
 */
export class OwnCookies {
  /** The names as configured, which the session plugin reads. */
  readonly #exact: ReadonlySet<string>
  /** The starts of names as configured: every name that begins so is ours. */
  readonly #exactStarts: readonly string[]
  /** Bare names, lower case, without a cookie prefix (`__Host-Http-`, `__Host-`…). */
  readonly #bare: ReadonlySet<string>
  /** The starts, bare as the names are. */
  readonly #bareStarts: readonly string[]
  /** Finds any header that could name one of ours, so most need no parse at all. */
  readonly #mention: RegExp

  /** `starts`: families of names, each a common start (`gatehouse-login.`) followed by anything. */
  constructor(names: readonly string[], starts: readonly string[] = []) {
    this.#exact = new Set(names)
    this.#exactStarts = starts
    const bare = new Set(names.map(bareName))
    this.#bare = bare
    this.#bareStarts = starts.map(bareName)
    this.#mention = new RegExp([...bare, ...this.#bareStarts].map(escapeRegExp).join('|'), 'i')
  }

  /** True when the text contains one of our names in any case: cheap, and false for most headers. */
  mentioned(text: string): boolean {
    return this.#mention.test(text)
  }

  /** True for one of our names spelled exactly as configured: no parse can read it otherwise. */
  isExact(name: string): boolean {
    return this.#exact.has(name) || this.#exactStarts.some((start) => name.startsWith(start))
  }

  /** True for our names in any letter case, with or without a cookie prefix, trimmed of whitespace. */
  owns(name: string): boolean {
    const bare = bareName(name)
    return this.#bare.has(bare) || this.#bareStarts.some((start) => bare.startsWith(start))
  }

  /**
   * True when a browser would store this `Set-Cookie` under one of our
   * names. The name is taken as RFC 6265bis §5.7 takes it: up to the first
   * `;`, then up to the first `=`, trimmed. A pair without `=` is a
   * nameless cookie whose value the browser sends back bare (`Cookie: v`),
   * so a nameless `=gatehouse=x` comes back as `gatehouse=x`: its value is
   * judged as a pair too.
   */
  ownsSetCookie(line: string): boolean {
    if (!this.#mention.test(line)) return false
    const semi = line.indexOf(';')
    const pair = semi === -1 ? line : line.slice(0, semi)
    const eq = pair.indexOf('=')
    if (eq === -1) return this.owns(pair)
    const name = pair.slice(0, eq)
    if (this.owns(name)) return true
    if (name.trim() !== '') return false
    const value = pair.slice(eq + 1)
    const inner = value.indexOf('=')
    return this.owns(inner === -1 ? value : value.slice(0, inner))
  }
}

/**
 * RFC 6265bis §4.1.3: the `__Host-` and `__Secure-` prefixes are matched
 * case-insensitively by browsers, as are `__Http-` and `__Host-Http-`
 * (draft-ietf-httpbis-layered-cookies), and §5.7 trims whitespace around a
 * name; we also fold case, as no upstream has a reason to set a near-copy
 * of ours. So `__Host-Http-gatehouse`, `__Host-gatehouse` (the name before
 * `__Host-Http-`, still in browsers after an upgrade) and `gatehouse` are
 * all ours.
 */
function bareName(name: string): string {
  const lower = name.trim().toLowerCase()
  for (const prefix of PREFIXES) if (lower.startsWith(prefix)) return lower.slice(prefix.length)
  return lower
}

/** Longest first: `__host-http-` before `__host-`. */
const PREFIXES = ['__host-http-', '__http-', '__host-', '__secure-']

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
