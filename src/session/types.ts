/**
 * Server-side session records and the contract every session store meets.
 *
 * The browser only ever holds a sealed cookie with `id`; everything below
 * stays on the server.
 */
import type { TokenSet } from '../types.js'

export interface SessionData {
  /** Random, 256-bit, base64url. Also the store key. */
  readonly id: string
  readonly sub: string
  /** The IdP's session id (`sid` claim), for back-channel logout. */
  readonly sid?: string | undefined
  /** A subset of the ID token claims, shown at `/auth/user`. */
  readonly claims: Readonly<Record<string, unknown>>
  readonly tokens: TokenSet
  /**
   * Bumped on every token update. Writers compare-and-set on it so a slow
   * request can never put back a refresh token that has been rotated away.
   */
  readonly version: number
  readonly createdAt: number
  readonly absoluteExpiresAt: number
  /** Sliding expiry; moved forward by `touch`, never past `absoluteExpiresAt`. */
  readonly idleExpiresAt: number
  /** Random value that a logout link must carry, so other sites cannot log users out. */
  readonly logoutHandle: string
}

export type UpdateResult = 'updated' | 'stale' | 'missing'

export interface ReadOptions {
  /**
   * Read the shared record itself, never this instance's copy of it. For
   * decisions that must see every instance's latest write, above all
   * whether to redeem a refresh token: a copy a moment old could hold one
   * that another instance has already rotated.
   */
  readonly fresh?: boolean
  /**
   * `false` reads without sliding the idle expiry: a look at the session
   * that is not the user's activity, such as the WebSocket session watch
   * or a refresh re-reading the session an HTTP call has already touched.
   * It never writes, not even the throttled touch; a session past its idle
   * or absolute expiry is still absent. Default `true`.
   */
  readonly touch?: boolean
}

export interface SessionStore {
  readonly kind: 'memory' | 'redis'
  create(session: SessionData): Promise<void>
  /**
   * Returns the live session or `undefined` when absent or expired. Slides
   * the idle expiry when enough of it has elapsed (a throttled touch that
   * never rewrites token fields), unless `options.touch` is `false`.
   */
  get(id: string, now: number, options?: ReadOptions): Promise<SessionData | undefined>
  /**
   * Replaces the tokens iff the stored version still equals `expectedVersion`;
   * the stored version becomes `expectedVersion + 1`.
   */
  updateTokens(id: string, expectedVersion: number, tokens: TokenSet): Promise<UpdateResult>
  delete(id: string): Promise<void>
  /** Ids of the live sessions of a user, for "log out everywhere". */
  idsBySub(sub: string): Promise<string[]>
  /** Ids of the live sessions bound to an IdP session, for back-channel logout. */
  idsBySid(sid: string): Promise<string[]>
  /** Rejects when the store cannot serve requests. */
  ping(): Promise<void>
  /** What the store reports on `/metrics`; absent, it reports nothing. */
  report?(): StoreReport
  close(): Promise<void>
}

/** A store's own figures for `/metrics`; each part only where it applies. */
export interface StoreReport {
  /** Sessions held in this process, expired ones not yet noticed included (the memory store). */
  readonly heldSessions?: () => number
  /** The per-instance copy of a shared store, whenever one was asked for. */
  readonly localCache?: LocalCacheReport
}

export interface LocalCacheReport {
  /** True while the copy is in use; false when it is off (a Redis Cluster, or `CLIENT TRACKING` refused). */
  enabled(): boolean
  /** The copy itself; absent when it was never started. */
  readonly copy?: {
    readonly size: number
    /** Invalidations are heard, so entries may be served. */
    readonly armed: boolean
    readonly stats: { readonly hits: number; readonly misses: number }
  }
}
