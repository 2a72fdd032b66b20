/** The gateway's cookie names: exact names, and the starts of name families (a sign-in's). */
export interface CookieNames {
  readonly names: readonly string[]
  readonly starts: readonly string[]
}

/**
 * Most names of earlier configs kept, over and above the running config's,
 * which are always kept: a config is no peer, but a process reloaded for
 * months should not grow without end.
 */
const MAX_HAD = 64

/**
 * The gateway's cookie names of every config this process has run. A
 * reload that renames a cookie (`session.cookieName`, a frontend's
 * `cookieName` or `name`) leaves the browsers holding the old one, sealing
 * a session the store still holds: live on a replica the change has not
 * reached yet, and again after a reload that takes the rename back. So an
 * old name stays the gateway's own, never sent upstream nor set by one.
 * A restart forgets them: a new process knows only its own config.
 */
export class CookieNamesHad {
  readonly #names = new Set<string>()
  readonly #starts = new Set<string>()

  /** Notes a config's names; returns them with every earlier config's. */
  note(current: CookieNames): CookieNames {
    remember(this.#names, current.names)
    remember(this.#starts, current.starts)
    return {
      names: [...new Set([...current.names, ...this.#names])],
      starts: [...new Set([...current.starts, ...this.#starts])],
    }
  }
}

/** Adds `values` as the newest, dropping the oldest past `MAX_HAD`. */
function remember(had: Set<string>, values: readonly string[]): void {
  for (const value of values) {
    had.delete(value)
    had.add(value)
  }
  for (const oldest of had) {
    if (had.size <= MAX_HAD) break
    had.delete(oldest)
  }
}
