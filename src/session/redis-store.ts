/**
 * Sessions in Redis, shared by every instance. Key layout (`{prefix}` is
 * `keyPrefix`, default `gatehouse:`):
 *
 *   {prefix}s:{<id>}   hash    login   sealed (see sealed-fields.ts): provider, issuer and
 *                                      client id, sub, sid, claims, createdAt,
 *                                      logoutHandle, the DPoP private key
 *                              tokens  sealed: the TokenSet
 *                              v       version, the compare-and-set guard
 *                              idle    idle expiry, epoch ms
 *                              abs     absolute expiry, epoch ms
 *                              ix      JSON of the index hashes, so a delete without
 *                                      the key can leave the indexes, and of the issuer
 *                                      and client id, so a lookup keeps only that one's
 *                              c       creation time, epoch ms, so the per-user bound
 *                                      can tell the oldest without the key
 *                              rx      `<v>:<epoch ms>`: when the refresh token of
 *                                      version <v> of the tokens expires (`<v>:` when the
 *                                      IdP did not say), so a logout can tell without the
 *                                      key that a session sharing its grant cannot use it
 *                      PEXPIREAT min(idle, abs); the idle part slides
 *   {prefix}sub:{<hash>}  zset  session ids of a user, scored by absolute expiry
 *   {prefix}sid:{<hash>}  zset  session ids of an IdP session, likewise
 *   {prefix}idp:<name>:sub:{<hash>}, …:sid:{<hash>}  the same, of a provider
 *                      not named `default`: a sub or sid is unique only per issuer
 *                      <hash> is a keyed hash of the sub or sid (`IndexHashes`);
 *                      PEXPIREAT of the highest score; members past it are pruned on
 *                      every write and read of the index, members whose session key
 *                      is gone are dropped when the index is listed, and a few of them
 *                      (the oldest, and some at random) on each sign-in
 *
 * The sealed fields open only with the session's key, which the browser's
 * cookie carries and Redis never sees. The previous version's records (a
 * `data` field and plaintext `tokens`, indexed by the plain sub and sid)
 * are read by nothing but `endPreviousFormat`.
 *
 * The braces are literal: a Redis Cluster hash tag, so every key is owned by
 * one slot and no script or command spans two. A session and its index
 * entries are therefore written in separate steps: indexes first, so a
 * crash in between leaves an index member without a session (pruned when
 * listed), never a session a logout by `sub` or `sid` cannot find.
 *
 * Nothing is swept by hand: expiry is Redis TTLs. Locks, cached client
 * tokens, seen logout tokens, the markers of sessions a sign-in replaced
 * and rate-limit counters share the prefix; see
 * `REDIS_KEY_LAYOUT` (src/redis/keys.ts), where every key is built.
 *
 * The store is composed of its parts, each a module of its own:
 * - redis-session-record.ts: the record's fields, written and opened;
 * - redis-store-connections.ts: the command and writing connections with
 *   the scripts on them, replica-confirmed writes, readiness;
 * - redis-session-reads.ts: the hot-path read, the local copy and the
 *   change hints it hears;
 * - redis-session-indexes.ts: the sub and sid indexes, entered, reclaimed
 *   and listed;
 * - redis-session-notes.ts: the replaced and logged-out notes.
 */
import { SHORTHAND_PROVIDER } from '../config/schema.js'
import { IndexHashes } from '../crypto/derived-keys.js'
import { type RedisClient, whenReady } from '../redis/connection.js'
import type { ReplicaConfirmation } from '../redis/durability.js'
import { type RedisKeys, redisKeys } from '../redis/keys.js'
import type { StoreRefusals } from '../redis/refusals.js'
import type { ClientRegistration, TokenSet } from '../types.js'
import { SessionIndexes } from './redis-session-indexes.js'
import { SessionNotes } from './redis-session-notes.js'
import { SessionReads } from './redis-session-reads.js'
import { previousSession, recordFields, tokenFields } from './redis-session-record.js'
import { StoreConnections } from './redis-store-connections.js'
import type { TrackedCache, TrackedCacheOptions } from './redis-tracked-cache.js'
import type {
  EndedSession,
  IssuedBy,
  NOT_IN_MEMORY,
  ReadOptions,
  SessionData,
  SessionOfUser,
  SessionRef,
  SessionStore,
  StoreRefusalReport,
  StoreReport,
  TakenSession,
  UpdateResult,
  UserLoggedOut,
} from './types.js'

export interface RedisSessionStoreOptions {
  /** A connection from `createRedisClient`, shared and closed by its owner. */
  readonly client: RedisClient
  /** Default `gatehouse:`. */
  readonly keyPrefix?: string
  /**
   * `session.secrets`, newest first: the sub and sid indexes are named by
   * keyed hashes derived from them, written under the first and found
   * under each.
   */
  readonly secrets: readonly string[]
  /** Sliding idle timeout, ms. */
  readonly idleTimeoutMs: number
  /** Slide the idle expiry only when this much of it has elapsed, ms. Default: a tenth of it. */
  readonly touchEveryMs?: number
  /** The clock used to prune the indexes. Default `Date.now`. */
  readonly now?: () => number
  /**
   * Keep hot sessions in this instance's memory, dropped the moment Redis
   * reports a change to them (see `TrackedCache`). Absent: every read goes
   * to Redis.
   */
  readonly cache?: Omit<TrackedCacheOptions, 'prefix'>
  /**
   * Confirm creates, token updates and deletes on a replica before they
   * count (see `ReplicaConfirmation`). Absent: a write counts once the
   * primary has it.
   */
  readonly confirm?: ReplicaConfirmation
  /**
   * Why the local cache is off although it was asked for (a Redis Cluster);
   * reported at startup and as `gatehouse_session_cache_enabled 0`.
   */
  readonly cacheOff?: string
  /**
   * What Redis refuses while up (refusals.ts), for `/readyz`; told of
   * each write refused so, to check again. Absent: nothing is checked.
   */
  readonly refusals?: StoreRefusals
}

/**
 * Sessions shared by every instance. Each operation is one Lua script (or
 * one command): one round trip, atomic. The per-request read is a plain
 * `HMGET`, since a script costs Redis more to run, or no round trip at all
 * when the local cache holds the session. Failures of Redis reject with
 * `StoreUnavailableError` within the command timeout.
 */
export class RedisSessionStore implements SessionStore {
  readonly kind = 'redis' as const
  readonly #conn: StoreConnections
  readonly #keys: RedisKeys
  readonly #now: () => number
  #hashes: IndexHashes
  readonly #reads: SessionReads
  readonly #indexes: SessionIndexes
  readonly #notes: SessionNotes

  constructor(options: RedisSessionStoreOptions) {
    this.#conn = new StoreConnections(options.client, options.confirm, options.refusals)
    this.#keys = redisKeys(options.keyPrefix)
    this.#now = options.now ?? Date.now
    this.#hashes = new IndexHashes(options.secrets)
    this.cacheOff = options.cacheOff
    this.#reads = new SessionReads({
      connections: this.#conn,
      keys: this.#keys,
      idleTimeoutMs: options.idleTimeoutMs,
      touchEveryMs: options.touchEveryMs ?? Math.floor(options.idleTimeoutMs / 10),
      cache: options.cache,
    })
    const hashes = () => this.#hashes
    this.#indexes = new SessionIndexes({ connections: this.#conn, keys: this.#keys, hashes, now: this.#now })
    this.#notes = new SessionNotes(this.#conn, this.#keys, hashes)
  }

  /**
   * `session.secrets` rotated by a config reload: indexes are written under
   * the new first secret's hash and found under each, once the function
   * returned is called (see `Stores.prepareSecrets`).
   */
  prepareSecrets(secrets: readonly string[]): () => void {
    const hashes = new IndexHashes(secrets)
    return () => {
      this.#hashes = hashes
    }
  }

  /** Why the local cache is off although configured, if it is; for the startup line and metrics. */
  readonly cacheOff: string | undefined

  /** The local cache, when on; for metrics and tests. */
  get cache(): TrackedCache<SessionData> | undefined {
    return this.#reads.cache
  }

  /** Resolves once connected, or after `timeoutMs` regardless (see `whenReady`). */
  async whenReady(timeoutMs?: number): Promise<void> {
    await Promise.all([whenReady(this.#conn.redis, timeoutMs), this.#reads.cache?.whenArmed(timeoutMs)])
  }

  async create(session: SessionData): Promise<void> {
    const ix = this.#indexes.namesOf(session)
    const now = this.#now()
    // Indexes first: a crash before the session is written leaves members
    // that listing prunes, never a session that a logout cannot find.
    const entered = await this.#indexes.enter(session, ix, now)
    const key = this.#keys.session(session.id)
    const args = recordFields(session, ix)
    await this.#writing(session.id, () => this.#conn.write('ghCreate', key, ...args))
    await this.#indexes.settle(entered)
  }

  get(ref: SessionRef, now: number, options?: ReadOptions): Promise<SessionData | undefined> {
    return this.#reads.get(ref, now, options)
  }

  /** `get`'s answer from the local copy, when `get` would serve it; else Redis must be asked. */
  peek(ref: SessionRef, now: number): SessionData | typeof NOT_IN_MEMORY {
    return this.#reads.peek(ref, now)
  }

  updateTokens(ref: SessionRef, expectedVersion: number, tokens: TokenSet): Promise<UpdateResult> {
    const key = this.#keys.session(ref.id)
    const args = tokenFields(ref, tokens)
    return this.#writing(ref.id, () => this.#conn.write('ghUpdateTokens', key, expectedVersion, ...args))
  }

  onChange(listener: (id: string) => void): () => void {
    return this.#reads.hints.add(listener)
  }

  async delete(id: string): Promise<boolean> {
    const key = this.#keys.session(id)
    const [ix, data, removed] = await this.#writing(id, () => this.#conn.write('ghDelete', key))
    await this.#indexes.leave(id, this.#indexes.keysNamedBy(ix, data))
    return removed === 1
  }

  /**
   * Hands back no grant: the record's tokens are sealed with a key only
   * the session's own cookie carries, and the request ending it holds
   * another's (docs/security.md).
   */
  async take(id: string): Promise<TakenSession | undefined> {
    return (await this.delete(id)) ? {} : undefined
  }

  noteReplaced(id: string, ttlMs: number): Promise<void> {
    return this.#notes.noteReplaced(id, ttlMs)
  }

  replaced(id: string): Promise<boolean> {
    return this.#notes.replaced(id)
  }

  async endPreviousFormat(id: string): Promise<EndedSession | undefined> {
    const key = this.#keys.session(id)
    const found = await this.#writing(id, () => this.#conn.write('ghEndPreviousFormat', key))
    if (!found) return undefined
    const [data, tokens] = found
    await this.#indexes.leave(id, this.#indexes.previousKeysOf(data))
    return previousSession(data, tokens)
  }

  noteSidLoggedOut(registration: ClientRegistration, sid: string, ttlMs: number): Promise<void> {
    return this.#notes.noteSidLoggedOut(registration, sid, ttlMs)
  }

  sidLoggedOut(registration: ClientRegistration, sid: string): Promise<boolean> {
    return this.#notes.sidLoggedOut(registration, sid)
  }

  noteSubLoggedOut(
    registration: ClientRegistration,
    sub: string,
    logout: Required<UserLoggedOut>,
    ttlMs: number,
  ): Promise<void> {
    return this.#notes.noteSubLoggedOut(registration, sub, logout, ttlMs)
  }

  subLoggedOutAt(registration: ClientRegistration, sub: string): Promise<UserLoggedOut | undefined> {
    return this.#notes.subLoggedOutAt(registration, sub)
  }

  idsBySub(sub: string, idp: string = SHORTHAND_PROVIDER, issuedBy?: IssuedBy): Promise<string[]> {
    return this.#indexes.ids('sub', sub, idp, issuedBy)
  }

  idsBySid(sid: string, idp: string = SHORTHAND_PROVIDER, issuedBy?: IssuedBy): Promise<string[]> {
    return this.#indexes.ids('sid', sid, idp, issuedBy)
  }

  sessionsOfUser(
    sub: string,
    idp: string = SHORTHAND_PROVIDER,
    issuedBy?: IssuedBy,
  ): Promise<SessionOfUser[]> {
    return this.#indexes.sessionsOfUser(sub, idp, issuedBy)
  }

  ping(): Promise<void> {
    return this.#conn.ping()
  }

  refusals(): Promise<readonly StoreRefusalReport[]> {
    return this.#conn.refusals()
  }

  report(): StoreReport {
    const copy = this.#reads.cache
    if (!copy && !this.cacheOff) return {}
    return { localCache: { enabled: () => copy !== undefined && !copy.refused, ...(copy ? { copy } : {}) } }
  }

  /** Stops the local copy; the connection is its owner's to close. */
  async close(stop?: AbortSignal): Promise<void> {
    await this.#reads.cache?.close(stop)
  }

  /**
   * A write, followed by dropping the local copy whether or not it went
   * through (a timed-out write may still have landed), so this instance
   * reads its own writes without waiting for Redis's invalidation.
   */
  async #writing<T>(id: string, write: () => Promise<T>): Promise<T> {
    try {
      return await this.#conn.noticing(write)
    } finally {
      this.#reads.forget(id)
    }
  }
}
