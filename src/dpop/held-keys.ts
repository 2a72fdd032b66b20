/**
 * Every cache of DPoP keys in the process, and which session's key each
 * key is, so that a session's end drops its key from all of them (a copy of
 * a key is a copy of its session's bound tokens). The sessions tell it which sessions they read and
 * which they end (src/session/sessions.ts); the refresh that ends a session
 * tells it too (src/tokens/redemption.ts). What no end reaches, such as a
 * logout on another replica, lapses unused (`KEY_IDLE_MS`, src/dpop/key-cache.ts), swept here.
 */
import { BoundedMap } from '../bounded-map.js'
import type { DpopKey } from '../types.js'
import { type KeyHolder, MAX_KEYS } from './key-cache.js'
import { publicKeyId } from './keys.js'

/** How often the caches drop their idle keys: an unused key lasts at most `KEY_IDLE_MS` plus this. */
export const SWEEP_EVERY_MS = 30_000 // 30 s

export class HeldKeys {
  readonly #caches = new Set<KeyHolder>()
  /**
   * Session id → its key's `publicKeyId`, for the ends that know only the
   * id (a back-channel logout or "log out everywhere" reads no record, and
   * a shared store's record opens only with the session's cookie). As many
   * as a cache holds keys; a session pushed out is found again at its next
   * read, and until then its key lapses unused like any other.
   */
  readonly #keyOf = new BoundedMap<string, string>(MAX_KEYS)
  readonly #timer: NodeJS.Timeout

  constructor() {
    this.#timer = setInterval(() => this.dropIdle(), SWEEP_EVERY_MS)
    this.#timer.unref()
  }

  /** Adds a cache whose keys ends and sweeps reach; the function returned takes it out. */
  keep(cache: KeyHolder): () => void {
    this.#caches.add(cache)
    return () => {
      this.#caches.delete(cache)
    }
  }

  /** Session `id`, with DPoP key `key`, was read in this process. */
  seen(id: string, key: DpopKey): void {
    // A session's key never changes: once known, a read costs one lookup.
    if (this.#keyOf.get(id) === undefined) this.#keyOf.set(id, publicKeyId(key))
  }

  /**
   * Session `id` ended in this process, or was found gone: its key leaves
   * every cache. `key` when the caller has the record; else the key last
   * seen for `id`, if any.
   */
  ended(id: string, key?: DpopKey): void {
    const keyId = key === undefined ? this.#keyOf.get(id) : publicKeyId(key)
    this.#keyOf.delete(id)
    if (keyId === undefined) return
    for (const cache of this.#caches) cache.forget(keyId)
  }

  /** Drops from every cache the keys unused for `KEY_IDLE_MS`; the timer calls it, tests may. */
  dropIdle(): void {
    for (const cache of this.#caches) cache.dropIdle()
  }

  /** True while some cache holds `key` (only its public members are read); for tests. */
  holds(key: DpopKey): boolean {
    const id = publicKeyId(key)
    for (const cache of this.#caches) if (cache.holds(id)) return true
    return false
  }

  /** Stops the sweep; the caches are left to their owners. */
  close(): void {
    clearInterval(this.#timer)
  }
}
