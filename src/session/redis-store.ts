import type { Redis } from 'ioredis'
import { guarded } from './redis-connection.js'
import { CREATE, DELETE, GET_AND_TOUCH, LIVE_MEMBERS, UPDATE_TOKENS } from './redis-scripts.js'
import type { SessionData, SessionStore, TokenSet, UpdateResult } from './types.js'

export interface RedisSessionStoreOptions {
  readonly client: Redis
  readonly keyPrefix: string
  readonly idleTimeoutMs: number
  /** Slide the idle expiry only when this much of it has elapsed, ms. Default: a tenth of it. */
  readonly touchEveryMs?: number
  readonly now?: () => number
}

/** Key layout, for the docs and for operators reading Redis. */
export const REDIS_KEYS = {
  session: '{prefix}s:{id}',
  bySub: '{prefix}sub:{sub}',
  bySid: '{prefix}sid:{sid}',
  lock: '{prefix}lock:{key}',
  clientToken: '{prefix}ct:{scopes}',
  releaseChannel: '{prefix}lock-released',
} as const

interface Scripts {
  ghCreate(key: string, ...args: (string | number)[]): Promise<number>
  ghGetAndTouch(key: string, ...args: (string | number)[]): Promise<string[] | null>
  ghUpdateTokens(key: string, version: number, tokens: string): Promise<UpdateResult>
  ghDelete(key: string, prefix: string, id: string): Promise<number>
  ghLiveMembers(key: string, prefix: string, now: number): Promise<string[]>
}

/** Fields fixed at login, stored once as JSON. */
interface Fixed {
  readonly claims: Record<string, unknown>
  readonly createdAt: number
  readonly logoutHandle: string
}

/**
 * Sessions shared by every instance. Expiry is Redis TTLs (sliding idle,
 * capped at absolute), nothing is swept by hand, and each operation is one
 * Lua script: one round trip, atomic. See `redis-scripts.ts` for the layout.
 */
export class RedisSessionStore implements SessionStore {
  readonly kind = 'redis' as const
  readonly #redis: Redis & Scripts
  readonly #prefix: string
  readonly #idle: number
  readonly #touchEvery: number
  readonly #now: () => number

  constructor(options: RedisSessionStoreOptions) {
    const redis = options.client as Redis & Partial<Scripts>
    if (!redis.ghGetAndTouch) {
      redis.defineCommand('ghCreate', { numberOfKeys: 1, lua: CREATE })
      redis.defineCommand('ghGetAndTouch', { numberOfKeys: 1, lua: GET_AND_TOUCH })
      redis.defineCommand('ghUpdateTokens', { numberOfKeys: 1, lua: UPDATE_TOKENS })
      redis.defineCommand('ghDelete', { numberOfKeys: 1, lua: DELETE })
      redis.defineCommand('ghLiveMembers', { numberOfKeys: 1, lua: LIVE_MEMBERS })
    }
    this.#redis = redis as Redis & Scripts
    this.#prefix = options.keyPrefix
    this.#idle = options.idleTimeoutMs
    this.#touchEvery = options.touchEveryMs ?? Math.floor(options.idleTimeoutMs / 10)
    this.#now = options.now ?? Date.now
  }

  async create(session: SessionData): Promise<void> {
    const fixed: Fixed = {
      claims: session.claims,
      createdAt: session.createdAt,
      logoutHandle: session.logoutHandle,
    }
    await guarded(() =>
      this.#redis.ghCreate(
        this.#key(session.id),
        this.#prefix,
        session.id,
        JSON.stringify(fixed),
        JSON.stringify(session.tokens),
        session.idleExpiresAt,
        session.absoluteExpiresAt,
        session.sub,
        session.sid ?? '',
      ),
    )
  }

  async get(id: string, now: number): Promise<SessionData | undefined> {
    const row = await guarded(() =>
      this.#redis.ghGetAndTouch(this.#key(id), this.#prefix, id, now, this.#idle, this.#touchEvery),
    )
    if (!row) return undefined
    const [d, t, v, i, a, sub, sid] = row as [string, string, string, string, string, string, string]
    const fixed = JSON.parse(d) as Fixed
    return {
      id,
      sub,
      sid: sid === '' ? undefined : sid,
      claims: fixed.claims,
      tokens: JSON.parse(t) as TokenSet,
      version: Number(v),
      createdAt: fixed.createdAt,
      absoluteExpiresAt: Number(a),
      idleExpiresAt: Number(i),
      logoutHandle: fixed.logoutHandle,
    }
  }

  updateTokens(id: string, expectedVersion: number, tokens: TokenSet): Promise<UpdateResult> {
    return guarded(() => this.#redis.ghUpdateTokens(this.#key(id), expectedVersion, JSON.stringify(tokens)))
  }

  async delete(id: string): Promise<void> {
    await guarded(() => this.#redis.ghDelete(this.#key(id), this.#prefix, id))
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

  /** The connection is shared and closed by its owner. */
  async close(): Promise<void> {}

  #key(id: string): string {
    return `${this.#prefix}s:${id}`
  }
}
