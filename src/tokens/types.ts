/**
 * Coordination primitives for refreshing tokens exactly once, and a cache
 * for client-credentials tokens. The memory implementations serve one
 * process; the Redis ones serve a cluster.
 */
import type { CachedToken } from '../types.js'

export interface HeldLock {
  /** Releases the lock iff still owned (compare-and-delete), and wakes waiters. */
  release(): Promise<void>
}

export interface LockService {
  /**
   * Tries once to take `key` for `ttlMs`. While held, the lock is renewed so
   * it outlives a slow holder; `null` when another owner holds it.
   */
  tryAcquire(key: string, ttlMs: number): Promise<HeldLock | null>
  /**
   * Resolves when `key` is released (or has expired), or rejects with a
   * `GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT` error after `timeoutMs`.
   */
  waitForRelease(key: string, timeoutMs: number): Promise<void>
  close(): Promise<void>
}

export interface TokenCache {
  get(key: string): Promise<CachedToken | undefined>
  set(key: string, token: CachedToken, ttlMs: number): Promise<void>
  close(): Promise<void>
}

/** Remembers one-time identifiers (such as a logout token's `jti`) for a while. */
export interface ReplayCache {
  /** True the first time `key` is seen within `ttlMs`; false for every repeat. */
  firstSeen(key: string, ttlMs: number): Promise<boolean>
  /** Forgets `key`, so its next sighting is a first again: for a use that failed and may be retried. */
  forget(key: string): Promise<void>
  /** Notes `key` as seen for `ttlMs` from now, whatever was noted before: a use claimed briefly, then carried out. */
  keep(key: string, ttlMs: number): Promise<void>
}

/**
 * Per (session, route): which refused access token last forced a refresh,
 * remembered for the route's cool-down. Shared by every instance when the
 * sessions are, so the bound holds however requests are spread.
 */
export interface RefreshCooldowns {
  /**
   * True when the token with this fingerprint may force a refresh under
   * `key`: nothing did within `ttlMs` (and this one is now remembered), or
   * this same token did, and the caller joins that refresh. False while
   * another token's cool-down runs.
   */
  claim(key: string, fingerprint: string, ttlMs: number): Promise<boolean>
}
