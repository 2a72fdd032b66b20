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

  constructor(maxEntries: number) {
    this.#entries = new BoundedMap(maxEntries)
  }

  get size(): number {
    return this.#entries.size
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
  }
}
