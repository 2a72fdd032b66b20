import type { UserTokens } from '../tokens/user-tokens.js'

/** The user tokens one app's frontends take, until the app lets them go. */
export interface FrontendUserTokensHold {
  /** The user tokens of a frontend that signs in with the providers `names`. */
  of(names: readonly string[]): UserTokens
  /** The app has closed: what it took and no other app holds is dropped. */
  release(): void
}

/**
 * The user tokens of each list of providers a frontend signs in with
 * (`frontends[].identityProviders`), by the list, while some app holds it.
 * Two apps a reload overlaps share the tokens of a list both use, so a
 * session's refresh runs in one flight whichever app serves it; a list no
 * app uses any more is dropped once the last app that used it has closed
 * (its requests done), where a map of every list any config had named grew
 * with each reload that changed one.
 */
export class FrontendUserTokens {
  readonly #make: (names: readonly string[]) => UserTokens
  readonly #held = new Map<string, { readonly tokens: UserTokens; holders: number }>()

  constructor(make: (names: readonly string[]) => UserTokens) {
    this.#make = make
  }

  /** How many lists have tokens held: tests. */
  get size(): number {
    return this.#held.size
  }

  /** What one app takes, each list once however many of its frontends use it. */
  hold(): FrontendUserTokensHold {
    const taken = new Set<string>()
    let released = false
    return {
      of: (names) => {
        const key = JSON.stringify(names)
        const entry = this.#held.get(key)
        // An app takes its lists as it is built, before it could close.
        if (released) return entry?.tokens ?? this.#make(names)
        if (entry === undefined) {
          const made = { tokens: this.#make(names), holders: 1 }
          this.#held.set(key, made)
          taken.add(key)
          return made.tokens
        }
        if (!taken.has(key)) {
          taken.add(key)
          entry.holders++
        }
        return entry.tokens
      },
      release: () => {
        if (released) return
        released = true
        for (const key of taken) {
          const entry = this.#held.get(key)
          if (entry !== undefined && --entry.holders <= 0) this.#held.delete(key)
        }
      },
    }
  }
}
