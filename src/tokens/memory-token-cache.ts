import { BoundedMap } from '../bounded-map.js'
import type { CachedToken } from '../types.js'
import type { TokenCache } from './types.js'

/**
 * Client-credentials tokens for one process, dropped when their TTL passes
 * (checked on read) and bounded in number, oldest written first out, so a
 * flood of distinct scope sets cannot grow it without limit.
 */
export class MemoryTokenCache implements TokenCache {
  readonly #tokens: BoundedMap<string, { token: CachedToken; until: number }>
  readonly #now: () => number

  constructor(now: () => number = Date.now, maxEntries = 1_000) {
    this.#now = now
    this.#tokens = new BoundedMap(maxEntries)
  }

  async get(key: string): Promise<CachedToken | undefined> {
    const entry = this.#tokens.get(key)
    if (!entry) return undefined
    if (this.#now() >= entry.until) {
      this.#tokens.delete(key)
      return undefined
    }
    return entry.token
  }

  async set(key: string, token: CachedToken, ttlMs: number): Promise<void> {
    this.#tokens.set(key, { token, until: this.#now() + ttlMs })
  }

  async close(): Promise<void> {
    this.#tokens.clear()
  }
}
