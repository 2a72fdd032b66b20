import { BoundedMap } from '../bounded-map.js'
import type { CachedToken } from '../types.js'
import type { TokenCache } from './types.js'

/**
 * Client-credentials tokens shared by the `ClientTokens` of one process
 * when there is no shared store: a reload that changes the token or
 * provider settings builds new ones, and the lock they take is the
 * process's, which outlives them. Without a copy both can read, a request
 * under the new config that waited on the old config's fetch found no
 * token when it ended, and answered 503 though the fetch had succeeded.
 * It holds the same objects as each `ClientTokens`' local copy, not copies of them.
 */
export class MemoryTokenCache implements TokenCache {
  readonly #entries: BoundedMap<string, { readonly token: CachedToken; readonly until: number }>
  readonly #now: () => number

  /** `max`: the keys come from the configuration (scopes per provider), so the bound is never reached by use. */
  constructor(now: () => number, max = 10_000) {
    this.#now = now
    this.#entries = new BoundedMap(max)
  }

  async get(key: string): Promise<CachedToken | undefined> {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.until > this.#now()) return entry.token
    this.#entries.delete(key)
    return undefined
  }

  /** As `RedisTokenCache.set`: a copy that outlives `token` stays. */
  async set(key: string, token: CachedToken, ttlMs: number): Promise<void> {
    const until = this.#now() + ttlMs
    const held = this.#entries.get(key)
    if (held !== undefined && held.until > until) return
    this.#entries.set(key, { token, until })
  }

  async drop(key: string, accessToken: string): Promise<void> {
    if (this.#entries.get(key)?.token.accessToken === accessToken) this.#entries.delete(key)
  }

  async close(): Promise<void> {
    this.#entries.clear()
  }
}
