import { BoundedMap } from '../bounded-map.js'

/** What one sealed cookie value opened to, kept so the next request with it skips libsodium. */
export interface OpenedCookie {
  /** The cookie's content, frozen: every request that sends the same sealed value reads this object. */
  readonly data: Readonly<Record<string, unknown>>
  /** When @fastify/secure-session stops accepting the value (its `__ts` + `expiry`), epoch ms (wall clock). */
  readonly expiresAt: number
  /**
   * Served no later than this, epoch ms on the sessions' clock: the end of
   * the session the cookie names as last read (`bound`), or, before any
   * read, an idle timeout from when it was opened, which no session can
   * outlast.
   */
  until: number
  /** Worked out from `data` alone, once per value: the session key and the record id it names. */
  derived: unknown
}

/**
 * Longest `Cookie` header whose reading is kept. A browser's header is the
 * session cookie (under 200 characters) and whatever the site's own
 * cookies add; a longer one is read each time, so what the memo holds is
 * at most its entry bound times this.
 */
export const OPENED_HEADER_MAX_LENGTH = 1024

/** Where a connection keeps the last `Cookie` header read on it, and the sealed value that header carried. */
const lastRead = Symbol('gatehouse.lastCookieRead')

/**
 * What requests arrive on: in Node, the request's socket. A keep-alive
 * connection from one browser sends the same `Cookie` header on every
 * request, so the last reading on it is matched by string equality, where
 * the header map must hash the whole header (about 190 characters, a new
 * string each request) to find it.
 */
export interface CookieConnection {
  [lastRead]?: LastRead
}

interface LastRead {
  /**
   * The cache whose reading it is. A reading is a pure function of the
   * header only for one cookie name: a connection outlives the app a reload
   * replaces, and a memo of the old app's let a renamed cookie's old value
   * keep its session.
   */
  readonly owner: OpenedCookies
  readonly header: string
  readonly sealed: string
}

/**
 * Opened cookies by their sealed value, bounded, least recently used first
 * out. Keyed by the whole sealed string, so a value maps to exactly what
 * that value opened to and no other cookie can be handed it; a value that
 * did not open is never stored. An entry is a shortcut past the sealing
 * only: the session it names is still read from its store on every
 * request, so a logout, a back-channel logout or an expiry on any instance
 * ends it here too, and then the entry goes (`delete`).
 */
export class OpenedCookies {
  readonly #entries: BoundedMap<string, OpenedCookie>
  /**
   * The sealed value each whole `Cookie` header carried, for headers whose
   * value opened. Reading a header is a pure function of it (the parse, and
   * the percent-decoding of a value that holds `%3B`, about 1.5 % of a
   * proxied request's CPU), so a remembered reading is never stale and
   * never another header's; whether the value is still served is the
   * entries' decision, as before.
   */
  readonly #headers: BoundedMap<string, string>

  constructor(maxEntries: number) {
    this.#entries = new BoundedMap(maxEntries)
    this.#headers = new BoundedMap(maxEntries)
  }

  get size(): number {
    return this.#entries.size
  }

  /** How many `Cookie` headers' readings are kept. */
  get headers(): number {
    return this.#headers.size
  }

  /**
   * The sealed value `header` was read to before, if it opened then: the
   * connection's last reading when it is the same header (a reading is a
   * pure function of the header, so it holds on any connection and after
   * the header map let it go), else the header map's.
   */
  sealedIn(header: string, connection?: CookieConnection): string | undefined {
    const last = connection?.[lastRead]
    if (last !== undefined && last.header === header && last.owner === this) return last.sealed
    const sealed = this.#headers.use(header)
    if (sealed !== undefined && connection !== undefined)
      connection[lastRead] = { owner: this, header, sealed }
    return sealed
  }

  /**
   * Keeps what `header` was read to, once its value has opened, in the
   * header map and as the connection's last reading; long headers are not
   * kept. A connection holds one reading, which goes with it.
   */
  remember(header: string, sealed: string, connection?: CookieConnection): void {
    if (header.length > OPENED_HEADER_MAX_LENGTH) return
    this.#headers.set(header, sealed)
    if (connection !== undefined) connection[lastRead] = { owner: this, header, sealed }
  }

  /** The entry, unless past either bound (then dropped). `now` is the sessions' clock. */
  get(sealed: string, now: number): OpenedCookie | undefined {
    const entry = this.#entries.use(sealed)
    if (entry === undefined) return undefined
    if (now >= entry.until || Date.now() >= entry.expiresAt) {
      this.#entries.delete(sealed)
      return undefined
    }
    return entry
  }

  set(sealed: string, entry: OpenedCookie): void {
    this.#entries.set(sealed, entry)
  }

  delete(sealed: string): void {
    this.#entries.delete(sealed)
  }

  clear(): void {
    this.#entries.clear()
    this.#headers.clear()
  }
}
