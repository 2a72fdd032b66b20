/**
 * A Map with a most-entries bound, kept in least-recently-used order: every
 * in-process cache of Gatehouse (sessions, the local session copy, client
 * tokens, logout-token ids) is one, so a flood of distinct keys evicts the
 * coldest entry instead of growing memory without limit. A JavaScript Map
 * iterates in insertion order, so re-inserting a key makes it the most
 * recent and the first key is always the least recent: each operation is
 * O(1). The most recent key is remembered, and using it again changes
 * nothing: one session's requests in a row (the common case) would
 * otherwise delete and re-insert its entry on each, and the Map's table
 * grows and is rebuilt as deletions accumulate.
 */
export class BoundedMap<K, V> {
  readonly #entries = new Map<K, V>()
  readonly #max: number
  readonly #onEvict: ((key: K, value: V) => void) | undefined
  /** The key inserted last, if it is still held: the last in the Map's order. */
  #newest: K | undefined

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
    if (value !== undefined && key !== this.#newest) this.set(key, value)
    return value
  }

  /** Stores `value` as the most recent, then evicts the least recent while over the bound. */
  set(key: K, value: V): void {
    if (key !== this.#newest) this.#entries.delete(key)
    this.#entries.set(key, value)
    this.#newest = key
    while (this.#entries.size > this.#max) {
      const [oldest, evicted] = this.#entries.entries().next().value as [K, V]
      this.#entries.delete(oldest)
      if (oldest === this.#newest) this.#newest = undefined
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
    if (key === this.#newest) this.#newest = undefined
    return this.#entries.delete(key)
  }

  clear(): void {
    this.#newest = undefined
    this.#entries.clear()
  }
}
