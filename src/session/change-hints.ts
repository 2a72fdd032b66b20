/** Called with the id of a session whose record may have changed or ended. */
export type ChangeListener = (id: string) => void

/**
 * The listeners of a store's `onChange`. A hint is only ever a reason to
 * read the session again, so a listener that throws is the listener's
 * fault: it must not stop the store's delete, nor the hints to the others.
 */
export class ChangeHints {
  readonly #listeners = new Set<ChangeListener>()

  add(listener: ChangeListener): () => void {
    // A wrapper per call: one listener added twice is removed once per call.
    const own: ChangeListener = (id) => listener(id)
    this.#listeners.add(own)
    return () => {
      this.#listeners.delete(own)
    }
  }

  get size(): number {
    return this.#listeners.size
  }

  heard(id: string): void {
    for (const listener of this.#listeners) {
      try {
        listener(id)
      } catch {
        // See the class comment.
      }
    }
  }
}
