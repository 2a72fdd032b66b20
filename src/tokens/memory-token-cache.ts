import type { CachedToken, TokenCache } from './types.js'

/** Client-credentials tokens for one process, dropped when their TTL passes. */
export class MemoryTokenCache implements TokenCache {
  readonly #tokens = new Map<string, { token: CachedToken; until: number }>()
  readonly #now: () => number

  constructor(now: () => number = Date.now) {
    this.#now = now
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
