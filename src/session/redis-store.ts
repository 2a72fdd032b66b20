/**
 * Sessions in Redis, shared by every instance. Key layout (`{prefix}` is
 * `keyPrefix`, default `gatehouse:`):
 *
 *   {prefix}s:{<id>}   hash    data    JSON of the fields fixed at login: sub, sid,
 *                                      claims, createdAt, absoluteExpiresAt, logoutHandle
 *                              tokens  JSON of the TokenSet
 *                              v       version, the compare-and-set guard
 *                              idle    idle expiry, epoch ms
 *                      PEXPIREAT min(idle, absoluteExpiresAt); the idle part slides
 *   {prefix}sub:{<sub>}  zset  session ids of a user, scored by absolute expiry
 *   {prefix}sid:{<sid>}  zset  session ids of an IdP session, scored by absolute expiry
 *                      PEXPIREAT of the highest score; members past it are pruned on
 *                      every write and read of the index, members whose session key
 *                      is gone are dropped when the index is listed
 *
 * The braces are literal: a Redis Cluster hash tag, so every key is owned by
 * one slot and no script or command spans two. A session and its index
 * entries are therefore written in separate steps: indexes first, so a
 * crash in between leaves an index member without a session (pruned when
 * listed), never a session a logout by `sub` or `sid` cannot find.
 *
 * Nothing is swept by hand: expiry is Redis TTLs. Locks, cached client
 * tokens, seen logout tokens and rate-limit counters share the prefix; see
 * `REDIS_KEY_LAYOUT`.
 */
import type { ChainableCommander } from 'ioredis'
import { guarded, type RedisClient, whenReady } from '../redis/connection.js'
import type { ReplicaConfirmation } from '../redis/durability.js'
import type { TokenSet } from '../types.js'
import { CREATE, DELETE, GET_AND_TOUCH, INDEX_ADD, INDEX_MEMBERS, UPDATE_TOKENS } from './redis-scripts.js'
import { TrackedCache, type TrackedCacheOptions } from './redis-tracked-cache.js'
import type { ReadOptions, SessionData, SessionStore, StoreReport, UpdateResult } from './types.js'

/**
 * Every key and channel Gatehouse uses in Redis, for the docs and for
 * operators; the README's key table lists the same keys (a test checks).
 */
export const REDIS_KEY_LAYOUT = {
  session: {
    key: '{prefix}s:{<id>}',
    type: 'hash',
    fields: {
      data: 'login-time fields as JSON',
      tokens: "the login's TokenSet and each route audience's access token, as JSON",
      v: 'version',
      idle: 'idle expiry',
    },
    expires: 'PEXPIREAT min(idle, absoluteExpiresAt)',
  },
  bySub: { key: '{prefix}sub:{<sub>}', type: 'zset', expires: 'PEXPIREAT of its highest absolute expiry' },
  bySid: { key: '{prefix}sid:{<sid>}', type: 'zset', expires: 'PEXPIREAT of its highest absolute expiry' },
  lock: { key: '{prefix}lock:{<key>}', type: 'string', expires: 'PX ttl, renewed while held' },
  clientToken: { key: '{prefix}ct:{scopes}', type: 'string', expires: 'PX, with the token' },
  seenLogoutToken: { key: '{prefix}seen:jti:{jti}', type: 'string', expires: 'PX 5 minutes' },
  retryCooldown: { key: '{prefix}cooldown:<hash>', type: 'string', expires: 'PX tokens.retryCooldown' },
  rateLimit: { key: '{prefix}rl:…', type: '@fastify/rate-limit', expires: 'the rate-limit window' },
  lockReleased: { key: '{prefix}lock-released', type: 'channel', expires: 'never (pub/sub)' },
  invalidations: {
    key: '__redis__:invalidate',
    type: 'channel',
    expires: 'CLIENT TRACKING BCAST PREFIX {prefix}s:, when the local cache is on',
  },
} as const

export interface RedisSessionStoreOptions {
  /** A connection from `createRedisClient`, shared and closed by its owner. */
  readonly client: RedisClient
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
}

interface Scripts {
  ghIndexAdd(key: string, id: string, absoluteExpiresAt: number, now: number): Promise<number>
  ghCreate(key: string, ...args: (string | number)[]): Promise<number>
  ghGetAndTouch(key: string, now: number, idleMs: number, touchEveryMs: number): Promise<string[] | null>
  ghUpdateTokens(key: string, version: number, tokens: string): Promise<UpdateResult>
  ghDelete(key: string): Promise<string | null>
  ghIndexMembers(key: string, now: number): Promise<string[]>
}

/** The same scripts queued on a pipeline, for writes that `ReplicaConfirmation` runs. */
type PipelineScripts = {
  [K in keyof Scripts]: (...args: Parameters<Scripts[K]>) => ChainableCommander
}

/** Defines the scripts on a connection once (EVALSHA, falling back to EVAL after NOSCRIPT). */
function withScripts(client: RedisClient): RedisClient & Scripts {
  const redis = client as RedisClient & Partial<Scripts>
  if (!redis.ghGetAndTouch) {
    redis.defineCommand('ghIndexAdd', { numberOfKeys: 1, lua: INDEX_ADD })
    redis.defineCommand('ghCreate', { numberOfKeys: 1, lua: CREATE })
    redis.defineCommand('ghGetAndTouch', { numberOfKeys: 1, lua: GET_AND_TOUCH })
    redis.defineCommand('ghUpdateTokens', { numberOfKeys: 1, lua: UPDATE_TOKENS })
    redis.defineCommand('ghDelete', { numberOfKeys: 1, lua: DELETE })
    redis.defineCommand('ghIndexMembers', { numberOfKeys: 1, lua: INDEX_MEMBERS })
  }
  return redis as RedisClient & Scripts
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
  readonly #redis: RedisClient & Scripts
  /** Where writes go: the confirming connection, else the command connection. */
  readonly #writer: RedisClient & Scripts
  readonly #confirm: ReplicaConfirmation | undefined
  readonly #prefix: string
  readonly #idle: number
  readonly #touchEvery: number
  readonly #now: () => number
  readonly #cache: TrackedCache<SessionData> | undefined

  constructor(options: RedisSessionStoreOptions) {
    this.#redis = withScripts(options.client)
    this.#confirm = options.confirm
    this.#writer = options.confirm ? withScripts(options.confirm.client) : this.#redis
    this.#prefix = options.keyPrefix ?? 'gatehouse:'
    this.#idle = options.idleTimeoutMs
    this.#touchEvery = options.touchEveryMs ?? Math.floor(options.idleTimeoutMs / 10)
    this.#now = options.now ?? Date.now
    this.cacheOff = options.cacheOff
    this.#cache = options.cache && new TrackedCache({ ...options.cache, prefix: `${this.#prefix}s:` })
  }

  /** Why the local cache is off although configured, if it is; for the startup line and metrics. */
  readonly cacheOff: string | undefined

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
    const now = this.#now()
    // Indexes first: a crash before the session is written leaves members
    // that listing prunes, never a session that a logout cannot find.
    const indexes = [this.#subKey(session.sub), ...(session.sid ? [this.#sidKey(session.sid)] : [])]
    await guarded(() =>
      Promise.all(
        indexes.map((index) => this.#writer.ghIndexAdd(index, session.id, session.absoluteExpiresAt, now)),
      ),
    )
    const key = this.#key(session.id)
    const args = [
      JSON.stringify(fixed),
      JSON.stringify(session.tokens),
      session.version,
      session.idleExpiresAt,
      session.absoluteExpiresAt,
    ] as const
    await this.#writing(session.id, () =>
      this.#confirm
        ? this.#confirmed(key, (p) => p.ghCreate(key, ...args))
        : this.#redis.ghCreate(key, ...args),
    )
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
  async get(id: string, now: number, options?: ReadOptions): Promise<SessionData | undefined> {
    const key = this.#key(id)
    const touch = options?.touch !== false
    const cached = options?.fresh ? undefined : this.#cache?.get(key)
    // A copy that looks expired, or due for its touch, is checked against
    // Redis: another instance may have slid the expiry a moment ago, and
    // ending a live session on a stale copy would log the user out.
    if (
      cached &&
      now < cached.idleExpiresAt &&
      now < cached.absoluteExpiresAt &&
      !(touch && this.#touchDue(cached.idleExpiresAt, now))
    )
      return cached
    const ticket = this.#cache?.begin(key)
    let session: SessionData | undefined
    try {
      const row = await guarded(() => this.#redis.hmget(key, 'data', 'tokens', 'v', 'idle'))
      if (row[0] === null) return undefined
      const idle = Number(row[3])
      if (now >= idle) return undefined
      if (touch && this.#touchDue(idle, now)) {
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
    const key = this.#key(id)
    const json = JSON.stringify(tokens)
    return this.#writing(id, () =>
      this.#confirm
        ? (this.#confirmed(key, (p) => p.ghUpdateTokens(key, expectedVersion, json)) as Promise<UpdateResult>)
        : this.#redis.ghUpdateTokens(key, expectedVersion, json),
    )
  }

  async delete(id: string): Promise<void> {
    const key = this.#key(id)
    const data = await this.#writing(id, () =>
      this.#confirm
        ? (this.#confirmed(key, (p) => p.ghDelete(key)) as Promise<string | null>)
        : this.#redis.ghDelete(key),
    )
    if (!data) return
    // The session is gone; its index entries are on other keys (other
    // slots), so they go in steps of their own. A failure here leaves
    // members that listing prunes.
    const fixed = JSON.parse(data) as Partial<Fixed>
    const indexes = [
      ...(typeof fixed.sub === 'string' ? [this.#subKey(fixed.sub)] : []),
      ...(typeof fixed.sid === 'string' ? [this.#sidKey(fixed.sid)] : []),
    ]
    await guarded(() => Promise.all(indexes.map((index) => this.#writer.zrem(index, id))))
  }

  idsBySub(sub: string): Promise<string[]> {
    return this.#liveMembers(this.#subKey(sub))
  }

  idsBySid(sid: string): Promise<string[]> {
    return this.#liveMembers(this.#sidKey(sid))
  }

  /**
   * Members of an index whose session is alive: listed from the index, then
   * each session asked on its own key, then the vanished ones removed. Ids
   * are never reused, so removing one whose session is gone is always safe.
   */
  async #liveMembers(index: string): Promise<string[]> {
    const now = this.#now()
    return guarded(async () => {
      const ids = await this.#redis.ghIndexMembers(index, now)
      const idles = await Promise.all(ids.map((id) => this.#redis.hget(this.#key(id), 'idle')))
      const gone = ids.filter((_, i) => idles[i] === null)
      if (gone.length > 0) await this.#redis.zrem(index, ...gone)
      return ids.filter((_, i) => idles[i] !== null && Number(idles[i]) > now)
    })
  }

  async #confirmed(key: string, queue: (pipeline: PipelineScripts) => void): Promise<unknown> {
    const [reply] = await this.#confirm!.write(key, (p) => queue(p as unknown as PipelineScripts))
    return reply
  }

  async ping(): Promise<void> {
    await guarded(() => this.#redis.ping())
  }

  report(): StoreReport {
    const copy = this.#cache
    if (!copy && !this.cacheOff) return {}
    return { localCache: { enabled: () => copy !== undefined && !copy.refused, ...(copy ? { copy } : {}) } }
  }

  /** Stops the local copy; the connection is its owner's to close. */
  async close(): Promise<void> {
    await this.#cache?.close()
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
    return `${this.#prefix}s:{${id}}`
  }

  #subKey(sub: string): string {
    return `${this.#prefix}sub:{${sub}}`
  }

  #sidKey(sid: string): string {
    return `${this.#prefix}sid:{${sid}}`
  }
}
