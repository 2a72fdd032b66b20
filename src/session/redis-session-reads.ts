/**
 * The Redis session store's hot path: a request's read of its session,
 * served from this instance's local copy when that is on and warm
 * (`TrackedCache`, which Redis keeps exact), else from Redis, sliding the
 * idle expiry when it is due. The copy's invalidations are also the
 * store's change hints (`onChange`).
 */
import { gatehouseError } from '../errors.js'
import { guarded, writeRefusedByRedis } from '../redis/connection.js'
import type { RedisKeys } from '../redis/keys.js'
import { ATTR, mark } from '../tracing/spans.js'
import { ChangeHints } from './change-hints.js'
import { clearFields, openRecord, sessionIdOf } from './redis-session-record.js'
import type { StoreConnections } from './redis-store-connections.js'
import { TrackedCache, type TrackedCacheOptions } from './redis-tracked-cache.js'
import { NOT_IN_MEMORY, type ReadOptions, type SessionData, type SessionRef } from './types.js'

/** What the reads need of the store that makes them. */
export interface SessionReadsOptions {
  readonly connections: StoreConnections
  readonly keys: RedisKeys
  /** Sliding idle timeout, ms. */
  readonly idleTimeoutMs: number
  /** Slide the idle expiry only when this much of it has elapsed, ms. */
  readonly touchEveryMs: number
  /** The local copy's options; absent: every read goes to Redis. */
  readonly cache?: Omit<TrackedCacheOptions, 'prefix'> | undefined
}

/** The reads of a `RedisSessionStore`, with its local copy and its change hints. */
export class SessionReads {
  readonly #conn: StoreConnections
  readonly #keys: RedisKeys
  readonly #idle: number
  readonly #touchEvery: number
  /** The local copy, when on. */
  readonly cache: TrackedCache<SessionData> | undefined
  /** The listeners of the store's `onChange`, told of each session Redis reports changed. */
  readonly hints = new ChangeHints()

  constructor(options: SessionReadsOptions) {
    this.#conn = options.connections
    this.#keys = options.keys
    this.#idle = options.idleTimeoutMs
    this.#touchEvery = options.touchEveryMs
    this.cache = options.cache && new TrackedCache({ ...options.cache, prefix: this.#keys.sessions })
    this.cache?.on('invalidated', (key: string) => {
      if (this.hints.size === 0) return
      const id = sessionIdOf(this.#keys, key)
      if (id !== undefined) this.hints.heard(id)
    })
  }

  /**
   * The hot path. With the local cache on and warm, no round trip at all;
   * otherwise one plain `HMGET`, which Redis answers without running a
   * script. Only when the idle expiry is due to slide does a second call
   * run the touch script, whose answer is then the one used (and not
   * cached: the touch is a write, so its invalidation is on its way).
   * With `touch: false` the script never runs, and a live copy is served
   * however due its touch is.
   */
  async get(ref: SessionRef, now: number, options?: ReadOptions): Promise<SessionData | undefined> {
    const key = this.#keys.session(ref.id)
    const touch = options?.touch !== false
    const cached = options?.fresh ? undefined : this.#servable(ref, key, now, touch)
    if (cached) {
      mark('gatehouse.session.cache', { [ATTR.cacheResult]: 'hit' })
      return cached
    }
    if (this.cache && !options?.fresh) mark('gatehouse.session.cache', { [ATTR.cacheResult]: 'miss' })
    const ticket = this.cache?.begin(key)
    let session: SessionData | undefined
    try {
      const row = await guarded(() => this.#conn.redis.hmget(key, 'login', 'tokens', 'v', 'idle', 'abs'))
      if (row[0] === null) return undefined
      const { idle } = clearFields(row)
      if (now >= idle) return undefined
      if (touch && this.#touchDue(idle, now)) {
        try {
          const touched = await guarded(() =>
            this.#conn.redis.ghGetAndTouch(key, now, this.#idle, this.#touchEvery),
          )
          return touched ? openRecord(ref, touched, now) : undefined
        } catch (err) {
          // A Redis that refuses writes (full under noeviction, a replica,
          // an ACL without scripts) still served the read: the session is live until the idle
          // expiry it has, so it is served unslid, and the next read tries
          // the slide again. Failing it instead answered every session
          // past its touch interval 503 while Redis was full.
          this.#conn.noticed(err)
          if (!writeRefusedByRedis(err)) throw err
        }
      }
      session = openRecord(ref, row, now)
      return session
    } finally {
      if (ticket) this.cache!.settle(ticket, session)
    }
  }

  /** `get`'s answer from the local copy, when `get` would serve it; else Redis must be asked. */
  peek(ref: SessionRef, now: number): SessionData | typeof NOT_IN_MEMORY {
    // Uncounted: a copy that is not served is counted by the `get` that follows.
    const served = this.#servable(ref, this.#keys.session(ref.id), now, true, false)
    if (served === undefined) return NOT_IN_MEMORY
    this.cache!.counted()
    return served
  }

  /** Drops the local copy of a session this instance wrote, so it reads its own writes. */
  forget(id: string): void {
    this.cache?.forget(this.#keys.session(id))
  }

  /** The local copy of the session, if it may be served for this read. */
  #servable(
    ref: SessionRef,
    key: string,
    now: number,
    touch: boolean,
    count = true,
  ): SessionData | undefined {
    const cached = this.cache?.get(key, count)
    if (!cached) return undefined
    // The copy holds what this key opened; another key gets what Redis
    // would give it, a refusal, without a round trip.
    if (!cached.key.equals(ref.key))
      throw gatehouseError('GATEHOUSE_ERR_SESSION_UNREADABLE', undefined, 'refused')
    // A copy that looks expired, or due for its touch, is checked against
    // Redis: another instance may have slid the expiry a moment ago, and
    // ending a live session on a stale copy would log the user out.
    if (
      now < cached.idleExpiresAt &&
      now < cached.absoluteExpiresAt &&
      !(touch && this.#touchDue(cached.idleExpiresAt, now))
    )
      return cached
    return undefined
  }

  #touchDue(idleExpiresAt: number, now: number): boolean {
    return now - (idleExpiresAt - this.#idle) >= this.#touchEvery
  }
}
