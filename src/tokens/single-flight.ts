/**
 * Coalesces concurrent calls per key: while a call for `key` is in flight,
 * later callers join it and receive the same result or the same error.
 * The entry is removed only by the flight that created it, so a late
 * `finally` can never evict a newer flight.
 */
export class SingleFlight<V> {
  readonly #inflight = new Map<string, Promise<V>>()
  readonly #onJoin: (() => void) | undefined

  constructor(onJoin?: () => void) {
    this.#onJoin = onJoin
  }

  run(key: string, fn: () => Promise<V>): Promise<V> {
    const existing = this.#inflight.get(key)
    if (existing) {
      this.#onJoin?.()
      return existing
    }
    const flight = (async () => fn())().finally(() => {
      if (this.#inflight.get(key) === flight) this.#inflight.delete(key)
    })
    this.#inflight.set(key, flight)
    return flight
  }

  /** True while a call for `key` is in flight, so a new caller would join it. */
  has(key: string): boolean {
    return this.#inflight.has(key)
  }

  get size(): number {
    return this.#inflight.size
  }
}
