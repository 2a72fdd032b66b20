/**
 * Sessions in Redis, shared by every instance. Key layout (`{prefix}` is
 * `keyPrefix`, default `gatehouse:`):
 *
 *   {prefix}s:{id}     hash    data    JSON of the fields fixed at login: sub, sid,
 *                                      claims, createdAt, absoluteExpiresAt, logoutHandle
 *                              tokens  JSON of the TokenSet
 *                              v       version, the compare-and-set guard
 *                              idle    idle expiry, epoch ms
 *                      PEXPIREAT min(idle, absoluteExpiresAt); the idle part slides
 *   {prefix}sub:{sub}  zset    session ids of a user, scored by absolute expiry
 *   {prefix}sid:{sid}  zset    session ids of an IdP session, scored by absolute expiry
 *                      PEXPIREAT of the highest score; members past it are pruned on
 *                      every write and read of the index, members whose session key
 *                      is gone are dropped when the index is listed
 *
 * Nothing is swept by hand: expiry is Redis TTLs. Locks and cached client
 * tokens share the prefix; see `REDIS_KEY_LAYOUT`.
 */
import type { Redis } from 'ioredis'
import { closeRedisClient, createRedisClient, guarded, whenReady } from './redis-connection.js'
import { CREATE, DELETE, GET_AND_TOUCH, LIVE_MEMBERS, UPDATE_TOKENS } from './redis-scripts.js'
import { TrackedCache, type TrackedCacheOptions } from './redis-tracked-cache.js'
import type { ReadOptions, SessionData, SessionStore, TokenSet, UpdateResult } from './types.js'

/** Every key and channel Gatehouse uses in Redis, for the docs and for operators. */
export const REDIS_KEY_LAYOUT = {
  session: {
    key: '{prefix}s:{id}',
    type: 'hash',
    fields: {
      data: 'login-time fields as JSON',
      tokens: 'TokenSet as JSON',
      v: 'version',
      idle: 'idle expiry',
    },
    expires: 'PEXPIREAT min(idle, absoluteExpiresAt)',
  },
  bySub: { key: '{prefix}sub:{sub}', type: 'zset', expires: 'PEXPIREAT of its highest absolute expiry' },
  bySid: { key: '{prefix}sid:{sid}', type: 'zset', expires: 'PEXPIREAT of its highest absolute expiry' },
  lock: { key: '{prefix}lock:{key}', type: 'string', expires: 'PX ttl, renewed while held' },
  clientToken: { key: '{prefix}ct:{key}', type: 'string', expires: 'PX, with the token' },
  lockReleased: { key: '{prefix}lock-released', type: 'channel', expires: 'never (pub/sub)' },
  invalidations: {
    key: '__redis__:invalidate',
    type: 'channel',
    expires: 'CLIENT TRACKING BCAST PREFIX {prefix}s:, when the local cache is on',
  },
} as const

export type RedisSessionStoreOptions = (
  | {
      /** A connection from `createRedisClient`, shared and closed by its owner. */
      readonly client: Redis
    }
  | {
      /** `redis://` or `rediss://`; the store then owns its connection and `close` quits it. */
      readonly url: string
      /** Budget of one command when the store owns its connection, ms. */
      readonly commandTimeoutMs?: number
    }
) & {
  /** Default `gatehouse:`. */
  readonly keyPrefix?: string
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
}

interface Scripts {
  ghCreate(...args: (string | number)[]): Promise<number>
  ghGetAndTouch(key: string, now: number, idleMs: number, touchEveryMs: number): Promise<string[] | null>
  ghUpdateTokens(key: string, version: number, tokens: string): Promise<UpdateResult>
  ghDelete(key: string, prefix: string, id: string): Promise<number>
  ghLiveMembers(key: string, prefix: string, now: number): Promise<string[]>
}

/** The `data` field: what is fixed at login. */
interface Fixed {
  readonly sub: string
  readonly sid?: string
  readonly claims: Record<string, unknown>
  readonly createdAt: number
  readonly absoluteExpiresAt: number
  readonly logoutHandle: string
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
  readonly #redis: Redis & Scripts
  readonly #owned: boolean
  readonly #prefix: string
  readonly #idle: number
  readonly #touchEvery: number
  readonly #now: () => number
  readonly #cache: TrackedCache<SessionData> | undefined

  constructor(options: RedisSessionStoreOptions) {
    const owned = 'url' in options
    const redis = (
      owned
        ? createRedisClient(options.url, { commandTimeout: options.commandTimeoutMs ?? 1_000 })
        : options.client
    ) as Redis & Partial<Scripts>
    // defineCommand sends EVALSHA and falls back to EVAL after NOSCRIPT,
    // which a restarted Redis answers until the script is loaded again.
    if (!redis.ghGetAndTouch) {
      redis.defineCommand('ghCreate', { numberOfKeys: 3, lua: CREATE })
      redis.defineCommand('ghGetAndTouch', { numberOfKeys: 1, lua: GET_AND_TOUCH })
      redis.defineCommand('ghUpdateTokens', { numberOfKeys: 1, lua: UPDATE_TOKENS })
      redis.defineCommand('ghDelete', { numberOfKeys: 1, lua: DELETE })
      redis.defineCommand('ghLiveMembers', { numberOfKeys: 1, lua: LIVE_MEMBERS })
    }
    this.#redis = redis as Redis & Scripts
    this.#owned = owned
    this.#prefix = options.keyPrefix ?? 'gatehouse:'
    this.#idle = options.idleTimeoutMs
    this.#touchEvery = options.touchEveryMs ?? Math.floor(options.idleTimeoutMs / 10)
    this.#now = options.now ?? Date.now
    this.#cache = options.cache && new TrackedCache({ ...options.cache, prefix: this.#key('') })
  }

  /** The local cache, when on; for metrics and tests. */
  get cache(): TrackedCache<SessionData> | undefined {
    return this.#cache
  }

  /** Resolves once connected, or after `timeoutMs` regardless (see `whenReady`). */
  async whenReady(timeoutMs?: number): Promise<void> {
    await Promise.all([whenReady(this.#redis, timeoutMs), this.#cache?.whenArmed(timeoutMs)])
  }

  async create(session: SessionData): Promise<void> {
    const fixed: Fixed = {
      sub: session.sub,
      ...(session.sid ? { sid: session.sid } : {}),
      claims: session.claims,
      createdAt: session.createdAt,
      absoluteExpiresAt: session.absoluteExpiresAt,
      logoutHandle: session.logoutHandle,
    }
    const bySub = `${this.#prefix}sub:${session.sub}`
    await this.#writing(session.id, () =>
      this.#redis.ghCreate(
        this.#key(session.id),
        bySub,
        session.sid ? `${this.#prefix}sid:${session.sid}` : bySub,
        session.id,
        JSON.stringify(fixed),
        JSON.stringify(session.tokens),
        session.version,
        session.idleExpiresAt,
        session.absoluteExpiresAt,
        this.#now(),
        session.sid ? '1' : '0',
      ),
    )
  }

  /**
   * The hot path. With the local cache on and warm, no round trip at all;
   * otherwise one plain `HMGET`, which Redis answers without running a
   * script. Only when the idle expiry is due to slide does a second call
   * run the touch script, whose answer is then the one used (and not
   * cached: the touch is a write, so its invalidation is on its way).
   */
  async get(id: string, now: number, options?: ReadOptions): Promise<SessionData | undefined> {
    const key = this.#key(id)
    const cached = options?.fresh ? undefined : this.#cache?.get(key)
    // A copy that looks expired, or due for its touch, is checked against
    // Redis: another instance may have slid the expiry a moment ago, and
    // ending a live session on a stale copy would log the user out.
    if (
      cached &&
      now < cached.idleExpiresAt &&
      now < cached.absoluteExpiresAt &&
      !this.#touchDue(cached.idleExpiresAt, now)
    )
      return cached
    const ticket = this.#cache?.begin(key)
    let session: SessionData | undefined
    try {
      const row = await guarded(() => this.#redis.hmget(key, 'data', 'tokens', 'v', 'idle'))
      if (row[0] === null) return undefined
      const idle = Number(row[3])
      if (now >= idle) return undefined
      if (this.#touchDue(idle, now)) {
        const touched = await guarded(() => this.#redis.ghGetAndTouch(key, now, this.#idle, this.#touchEvery))
        return touched ? this.#parse(id, touched, now) : undefined
      }
      session = this.#parse(id, row, now)
      return session
    } finally {
      if (ticket) this.#cache!.settle(ticket, session)
    }
  }

  #touchDue(idleExpiresAt: number, now: number): boolean {
    return now - (idleExpiresAt - this.#idle) >= this.#touchEvery
  }

  #parse(id: string, row: (string | null)[], now: number): SessionData | undefined {
    const [data, tokens, v, touchedIdle] = row as [string, string, string, string]
    const fixed = JSON.parse(data) as Fixed
    if (now >= fixed.absoluteExpiresAt) return undefined
    return {
      id,
      sub: fixed.sub,
      sid: fixed.sid,
      claims: fixed.claims,
      tokens: JSON.parse(tokens) as TokenSet,
      version: Number(v),
      createdAt: fixed.createdAt,
      absoluteExpiresAt: fixed.absoluteExpiresAt,
      idleExpiresAt: Number(touchedIdle),
      logoutHandle: fixed.logoutHandle,
    }
  }

  updateTokens(id: string, expectedVersion: number, tokens: TokenSet): Promise<UpdateResult> {
    return this.#writing(id, () =>
      this.#redis.ghUpdateTokens(this.#key(id), expectedVersion, JSON.stringify(tokens)),
    )
  }

  async delete(id: string): Promise<void> {
    await this.#writing(id, () => this.#redis.ghDelete(this.#key(id), this.#prefix, id))
  }

  idsBySub(sub: string): Promise<string[]> {
    return guarded(() => this.#redis.ghLiveMembers(`${this.#prefix}sub:${sub}`, this.#prefix, this.#now()))
  }

  idsBySid(sid: string): Promise<string[]> {
    return guarded(() => this.#redis.ghLiveMembers(`${this.#prefix}sid:${sid}`, this.#prefix, this.#now()))
  }

  async ping(): Promise<void> {
    await guarded(() => this.#redis.ping())
  }

  /** Quits the connection if the store opened it; a shared one is closed by its owner. */
  async close(): Promise<void> {
    await Promise.all([this.#cache?.close(), this.#owned && closeRedisClient(this.#redis)])
  }

  /**
   * A write, followed by dropping the local copy whether or not it went
   * through (a timed-out write may still have landed), so this instance
   * reads its own writes without waiting for Redis's invalidation.
   */
  async #writing<T>(id: string, write: () => Promise<T>): Promise<T> {
    try {
      return await guarded(write)
    } finally {
      this.#cache?.forget(this.#key(id))
    }
  }

  #key(id: string): string {
    return `${this.#prefix}s:${id}`
  }
}
