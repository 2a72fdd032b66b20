/**
 * What a DPoP key is kept ready as in process (oauth4webapi's handle, an
 * upstream signer), by the key's public members (`publicKeyId`). A
 * session's key lives in its session record and goes with it; a copy
 * kept here must not outlive the session by much. So each copy is dropped
 * when the session ends in this process (`HeldKeys.ended`), when it has
 * gone unused for `KEY_IDLE_MS` (an end this process did not see), and when
 * newer keys need its room.
 */
import { BoundedMap } from '../bounded-map.js'

/**
 * Keys kept ready per cache, most recently used first; past it the coldest
 * goes. A cliff, not a slope: more sessions than this sending requests in
 * turn to one process make a key on every request, about 1 ms of CPU for an
 * upstream EC signer. Kept for the key copies and the memory (about 6.5 KiB
 * a signer); docs/performance.md "Past 10,000 active DPoP sessions per process".
 */
export const MAX_KEYS = 10_000

/**
 * How long a key may go unused before its copy here is dropped: 5 min. A
 * replica that did not see a session end (a logout, a back-channel logout
 * or an expiry noticed elsewhere) holds its key no longer than this after
 * its last request, plus `HeldKeys`' sweep period: a sixth of the default
 * idle timeout (30 min), whose end the session's record would meet anyway.
 * A signed-in user whose SPA pauses longer pays the copy again: an import
 * and about a millisecond for the upstream signer (src/dpop/upstream.ts).
 */
export const KEY_IDLE_MS = 5 * 60_000

interface Held<V> {
  readonly id: string
  value: V
  usedAt: number
}

/** What `HeldKeys` asks of each cache of keys. */
export interface KeyHolder {
  /** Drops the key named `id` (`publicKeyId`), if held. */
  forget(id: string): void
  /** Drops the keys unused for `KEY_IDLE_MS`. */
  dropIdle(): void
  /** True while the key named `id` is held; for tests and `HeldKeys.holds`. */
  holds(id: string): boolean
}

/** A bounded cache of one form of DPoP keys, by `publicKeyId`, whose entries also lapse unused. */
export class KeyCache<V> implements KeyHolder {
  readonly #entries: BoundedMap<string, Held<V>>
  readonly #now: () => number

  /** `now`: the clock the idle time is measured by, epoch ms. */
  constructor(now: () => number, max = MAX_KEYS) {
    this.#entries = new BoundedMap(max)
    this.#now = now
  }

  /** The value, marked as used now. */
  use(id: string): V | undefined {
    const held = this.#entries.use(id)
    if (held === undefined) return undefined
    held.usedAt = this.#now()
    return held.value
  }

  set(id: string, value: V): void {
    this.#entries.set(id, { id, value, usedAt: this.#now() })
  }

  /**
   * Replaces the value of a key still held. A signer made in a promise
   * lands here: one whose key was forgotten meanwhile stays forgotten.
   */
  replace(id: string, value: V): void {
    const held = this.#entries.get(id)
    if (held !== undefined) held.value = value
  }

  forget(id: string): void {
    this.#entries.delete(id)
  }

  dropIdle(): void {
    const before = this.#now() - KEY_IDLE_MS
    // Least recently used first: the first one used since ends the sweep.
    for (let held = this.#entries.oldest(); held !== undefined && held.usedAt <= before; ) {
      this.#entries.delete(held.id)
      held = this.#entries.oldest()
    }
  }

  holds(id: string): boolean {
    return this.#entries.get(id) !== undefined
  }
}
