/**
 * A Map with a most-entries bound, kept in least-recently-used order: every
 * in-process cache of Gatehouse (sessions, the local session copy, client
 * tokens, logout-token ids) is one, so a flood of distinct keys evicts the
 * coldest entry instead of growing memory without limit. A JavaScript Map
 * iterates in insertion order, so re-inserting a key makes it the most
 * recent and the first key is always the least recent: each operation is
 * O(1).
 */
export class BoundedMap<K, V> {
  readonly #entries = new Map<K, V>()
  readonly #max: number
  readonly #onEvict: ((key: K, value: V) => void) | undefined

  /** `onEvict` hears of each entry dropped for room, not of deletes. */
  constructor(max: number, onEvict?: (key: K, value: V) => void) {
    this.#max = max
    this.#onEvict = onEvict
  }

  get size(): number {
    return this.#entries.size
  }

  /** The value, without making it more recent. */
  get(key: K): V | undefined {
    return this.#entries.get(key)
  }

  /** The value, made the most recent. */
  use(key: K): V | undefined {
    const value = this.#entries.get(key)
    if (value !== undefined) this.set(key, value)
    return value
  }

  /** Stores `value` as the most recent, then evicts the least recent while over the bound. */
  set(key: K, value: V): void {
    this.#entries.delete(key)
    this.#entries.set(key, value)
    while (this.#entries.size > this.#max) {
      const [oldest, evicted] = this.#entries.entries().next().value as [K, V]
      this.#entries.delete(oldest)
      this.#onEvict?.(oldest, evicted)
    }
  }

  /** Replaces the value of a key already held, leaving its place in the order. */
  replace(key: K, value: V): void {
    if (this.#entries.has(key)) this.#entries.set(key, value)
  }

  /** The least recently used value, the first to be evicted. */
  oldest(): V | undefined {
    return this.#entries.values().next().value
  }

  delete(key: K): boolean {
    return this.#entries.delete(key)
  }

  clear(): void {
    this.#entries.clear()
  }
}
