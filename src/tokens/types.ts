/**
 * Coordination primitives for refreshing tokens exactly once, and a cache
 * for client-credentials tokens. The memory implementations serve one
 * process; the Redis ones serve a cluster.
 */
import type { CachedToken } from '../types.js'

/**
 * How a waiter hears that a lock was given back. `idle`: its holder asked
 * the IdP nothing, having found under the lock that nothing was due for
 * it (another instance refreshed first), so a waiter whose own token is
 * still due may take the lock itself. `answered`: its holder asked the
 * IdP and had its answer, tokens it stored or a refusal of its own
 * audience only, so the IdP is up and a waiter whose own token is still
 * due may take the lock itself: the version it read may already be the
 * holder's write, so an unchanged version does not say the holder failed.
 * `free`: the lock was already free
 * when the waiter first looked, given back between its failed acquire and
 * its wait, or while it subscribed to releases: it is where it would be
 * had it come a moment later and taken the lock, as any first comer does.
 * `released`: the holder said it failed (a release that says nothing),
 * and its error is not the waiter's to repeat at the IdP. `unheard`: a
 * later poll found the lock gone and no word of how came in time (the
 * message late on a loaded machine or a Cluster's bus, lost in a
 * reconnect, or never sent: a lock that lapsed). Nothing says the holder
 * failed, and a 503 for it failed requests in a storm under load whose
 * holders had all succeeded; the waiter goes round as after `free`, and
 * takes the lock if its token is still due, as the next request would.
 */
export type Release = 'idle' | 'answered' | 'free' | 'released' | 'unheard'

export interface HeldLock {
  /**
   * Releases the lock iff still owned (compare-and-delete), and wakes
   * waiters; `idle` tells them the holder asked the IdP nothing,
   * `answered` that it asked and was answered.
   */
  release(how?: Release): Promise<void>
}

export interface LockService {
  /**
   * Tries once to take `key` for `ttlMs`. While held, the lock is renewed so
   * it outlives a slow holder; `null` when another owner holds it.
   */
  tryAcquire(key: string, ttlMs: number): Promise<HeldLock | null>
  /**
   * Resolves when `key` is released (or has expired), with how as far as
   * this waiter heard it, or rejects with a
   * `GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT` error after `timeoutMs`.
   */
  waitForRelease(key: string, timeoutMs: number): Promise<Release>
  close(): Promise<void>
}

export interface TokenCache {
  get(key: string): Promise<CachedToken | undefined>
  /**
   * Stores `token` for `ttlMs`, unless the copy held outlives that: a
   * writer late with an older token (its lock lapsed while the IdP was
   * slow) leaves the newer one another stored meanwhile.
   */
  set(key: string, token: CachedToken, ttlMs: number): Promise<void>
  /**
   * Deletes the token under `key` only if it is still the one whose access
   * token is `accessToken` (compare-and-delete): a token another instance
   * stored in its place meanwhile stays.
   */
  drop(key: string, accessToken: string): Promise<void>
  close(): Promise<void>
}

/**
 * What a claim on a one-time identifier found: nothing (`claimed`, it is
 * now held by the caller), a use still being carried out (`held`), a use
 * carried out (`done`), or a use carried out after its sender was told it
 * failed (`owed`: a back-channel logout answered 503 and carried out once
 * the store was back), so that a repeat may be the resend the failure
 * asked for.
 */
export type ReplayClaim = 'claimed' | 'held' | 'done' | 'owed'

/** How a use carried out is kept. */
export type ReplayKept = Exclude<ReplayClaim, 'claimed' | 'held'>

/**
 * Remembers one-time identifiers (such as a logout token's `jti`) for a
 * while: held briefly while a use is carried out, then kept as done.
 */
export interface ReplayCache {
  /** Holds `key` for `holdMs` when it is neither held nor done; says which it found otherwise. */
  claim(key: string, holdMs: number): Promise<ReplayClaim>
  /**
   * Drops a hold on `key`, so its next claim is a first again: for a use
   * that failed and may be retried. A `key` kept as done stays done.
   */
  forget(key: string): Promise<void>
  /**
   * Notes `key` as carried out (`done` unless `as` says `owed`) for `ttlMs`
   * from now, whatever was noted before: a use claimed, then carried out.
   */
  keep(key: string, ttlMs: number, as?: ReplayKept): Promise<void>
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
