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
 */
import type { ChainableCommander } from 'ioredis'
import { SHORTHAND_PROVIDER } from '../config/schema.js'
import { type IndexedClaim, IndexHashes } from '../crypto/derived-keys.js'
import { gatehouseError } from '../errors.js'
import { guarded, type RedisClient, whenReady, writeRefusedByRedis } from '../redis/connection.js'
import type { ReplicaConfirmation } from '../redis/durability.js'
import { type RedisKeys, redisKeys } from '../redis/keys.js'
import { type StoreRefusals, summarizeRefusal } from '../redis/refusals.js'
import { ATTR, mark } from '../tracing/spans.js'
import type { ClientRegistration, TokenSet } from '../types.js'
import { ChangeHints } from './change-hints.js'
import { latestLogout, loggedOutName } from './logged-out-name.js'
import {
  CREATE,
  DELETE,
  END_PREVIOUS_FORMAT,
  GET_AND_TOUCH,
  INDEX_ADD,
  INDEX_MEMBERS,
  NOTE_SUB_LOGGED_OUT,
  UPDATE_TOKENS,
} from './redis-scripts.js'
import { TrackedCache, type TrackedCacheOptions } from './redis-tracked-cache.js'
import { loginFields, openField, sealField } from './sealed-fields.js'
import {
  type EndedSession,
  type IssuedBy,
  NOT_IN_MEMORY,
  type ReadOptions,
  type SessionData,
  type SessionOfUser,
  type SessionRef,
  type SessionStore,
  type StoreRefusalReport,
  type StoreReport,
  type TakenSession,
  type UpdateResult,
  type UserLoggedOut,
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

interface Scripts {
  ghIndexAdd(
    key: string,
    id: string,
    absoluteExpiresAt: number,
    now: number,
    settled: number,
    random: number,
    offer: number,
  ): Promise<string[]>
  ghCreate(key: string, ...args: (string | number)[]): Promise<number>
  ghGetAndTouch(key: string, now: number, idleMs: number, touchEveryMs: number): Promise<string[] | null>
  ghUpdateTokens(key: string, version: number, tokens: string, refreshExpiry: string): Promise<UpdateResult>
  ghDelete(key: string): Promise<[string | null, string | null, number]>
  ghEndPreviousFormat(key: string): Promise<[string, string | null] | null>
  ghIndexMembers(key: string, now: number): Promise<string[]>
  ghNoteSubLoggedOut(key: string, at: number, iat: number, ttlMs: number): Promise<string>
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
    redis.defineCommand('ghEndPreviousFormat', { numberOfKeys: 1, lua: END_PREVIOUS_FORMAT })
    redis.defineCommand('ghIndexMembers', { numberOfKeys: 1, lua: INDEX_MEMBERS })
    redis.defineCommand('ghNoteSubLoggedOut', { numberOfKeys: 1, lua: NOTE_SUB_LOGGED_OUT })
  }
  return redis as RedisClient & Scripts
}

/**
 * The `ix` field: the hashes a session is indexed under, whose indexes
 * (`idp`; absent: `default`'s), and the registration of its tokens (absent
 * in a session made before it was recorded), which a lookup by `sub` or
 * `sid` reads without the session's key.
 */
type IndexNames = Partial<Record<IndexedClaim | 'idp', string>> & {
  readonly registration?: ClientRegistration
}

/** How many of the oldest index members, and as many at a random rank, each sign-in checks for a gone session. */
const RECLAIM_PER_CREATE = 4

/**
 * How long an index member is left alone by the reclaim: its sign-in has
 * written the index but maybe not yet the record (a command timeout, a
 * replica's confirmation), and must not lose its member meanwhile.
 */
const SETTLE_MS = 5 * 60_000 // 5 min

/** A live member of an index, with its record's `c` field (null: written before there was one). */
interface LiveMember {
  readonly id: string
  readonly created: string | null
  /** When its refresh token expires, where the record says so for its current tokens. */
  readonly refreshTokenExpiresAt?: number
}

/** The previous version's `data` field, as far as ending such a session needs it. */
interface PreviousData {
  readonly sub?: unknown
  readonly sid?: unknown
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
  readonly #keys: RedisKeys
  readonly #idle: number
  readonly #touchEvery: number
  readonly #now: () => number
  readonly #cache: TrackedCache<SessionData> | undefined
  #hashes: IndexHashes
  readonly #hints = new ChangeHints()
  readonly #refusals: StoreRefusals | undefined

  constructor(options: RedisSessionStoreOptions) {
    this.#redis = withScripts(options.client)
    this.#confirm = options.confirm
    this.#writer = options.confirm ? withScripts(options.confirm.client) : this.#redis
    this.#keys = redisKeys(options.keyPrefix)
    this.#idle = options.idleTimeoutMs
    this.#touchEvery = options.touchEveryMs ?? Math.floor(options.idleTimeoutMs / 10)
    this.#now = options.now ?? Date.now
    this.#hashes = new IndexHashes(options.secrets)
    this.#refusals = options.refusals
    this.cacheOff = options.cacheOff
    this.#cache = options.cache && new TrackedCache({ ...options.cache, prefix: this.#keys.sessions })
    this.#cache?.on('invalidated', (key: string) => {
      if (this.#hints.size === 0) return
      const id = this.#idOf(key)
      if (id !== undefined) this.#hints.heard(id)
    })
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
    return this.#cache
  }

  /** Resolves once connected, or after `timeoutMs` regardless (see `whenReady`). */
  async whenReady(timeoutMs?: number): Promise<void> {
    await Promise.all([whenReady(this.#redis, timeoutMs), this.#cache?.whenArmed(timeoutMs)])
  }

  async create(session: SessionData): Promise<void> {
    const ix: IndexNames = {
      ...(session.idp === SHORTHAND_PROVIDER ? {} : { idp: session.idp }),
      sub: this.#hashes.current('sub', session.sub),
      ...(session.sid ? { sid: this.#hashes.current('sid', session.sid) } : {}),
      ...(session.registration ? { registration: session.registration } : {}),
    }
    const now = this.#now()
    // Indexes first: a crash before the session is written leaves members
    // that listing prunes, never a session that a logout cannot find.
    const indexes = this.#indexKeys(ix)
    // Members indexed more than SETTLE_MS before this one have had time to
    // write their record: only those may be reclaimed as gone.
    const settled = session.absoluteExpiresAt - SETTLE_MS
    // Each entry confirmed on a replica of its own index's master: on a
    // Cluster that is seldom the record's, and the record's WAIT covers
    // only writes to its node. An entry lost in a failover is a session
    // that a back-channel logout by sub or sid cannot find.
    const offered = await this.#noticing(() =>
      Promise.all(
        indexes.map((index) => {
          const args = [
            index,
            session.id,
            session.absoluteExpiresAt,
            now,
            settled,
            Math.random(),
            RECLAIM_PER_CREATE,
          ] as const
          return this.#confirm
            ? (this.#confirmed(index, (p) => p.ghIndexAdd(...args)) as Promise<string[]>)
            : this.#redis.ghIndexAdd(...args)
        }),
      ),
    )
    const key = this.#key(session.id)
    const args = [
      sealField(session, 'login', loginFields(session)),
      sealField(session, 'tokens', session.tokens),
      session.version,
      session.idleExpiresAt,
      session.absoluteExpiresAt,
      JSON.stringify(ix),
      session.createdAt,
      refreshExpiry(session.tokens),
    ] as const
    await this.#writing(session.id, () =>
      this.#confirm
        ? this.#confirmed(key, (p) => p.ghCreate(key, ...args))
        : this.#redis.ghCreate(key, ...args),
    )
    // SETTLE_MS reads a member's age off its score, the absolute expiry,
    // which an instance still on a shorter session.absoluteTimeout (a
    // reload not yet applied there) or with its clock behind writes low:
    // another sign-in's reclaim may have taken this member before the
    // record existed. Now that it does, the member goes back.
    await Promise.all([
      guarded(() =>
        Promise.all(
          indexes.map((index) =>
            this.#writer.ghIndexAdd(index, session.id, session.absoluteExpiresAt, now, 0, 0, 0),
          ),
        ),
      ),
      this.#reclaim(indexes, offered, now),
    ])
  }

  /**
   * Takes out of each index the members offered by `INDEX_ADD` whose
   * session is gone. A session that lapses at its idle timeout keeps its
   * member until its absolute expiry, and nothing else prunes an index
   * but a lookup, which costs one read per member: a user signing in over
   * and over without logging out grew one member per sign-in. Checking a
   * few per sign-in removes stale members faster than sign-ins add them.
   * Best effort, after the session is written: the sign-in has succeeded
   * whatever happens here, and a lookup still prunes.
   */
  async #reclaim(indexes: readonly string[], offered: readonly string[][], now: number): Promise<void> {
    const candidates = [...new Set(offered.flat())]
    if (candidates.length === 0) return
    try {
      const present = await guarded(() =>
        Promise.all(candidates.map((id) => this.#redis.exists(this.#key(id)))),
      )
      const gone = candidates.filter((_, i) => present[i] === 0)
      if (gone.length === 0) return
      await guarded(() => Promise.all(indexes.map((index) => this.#writer.zrem(index, ...gone))))
      await this.#indexAgain(gone, now)
    } catch {
      // Left to the next sign-in's reclaim or to a lookup's pruning.
    }
  }

  /**
   * Puts back, in the indexes its record names, each of `removed` whose
   * record exists after all: removed as gone on a check that ran before
   * its sign-in wrote the record (indexes go first), while the sign-in put
   * its member back before the removal landed. Without this the session
   * lived on where no lookup by `sub` or `sid` could find it.
   */
  async #indexAgain(removed: readonly string[], now: number): Promise<void> {
    const rows = await guarded(() =>
      Promise.all(removed.map((id) => this.#redis.hmget(this.#key(id), 'abs', 'ix'))),
    )
    await guarded(() =>
      Promise.all(
        rows.flatMap(([abs, ix], i) =>
          abs && ix
            ? this.#indexKeys(parsed<IndexNames>(ix)).map((index) =>
                this.#writer.ghIndexAdd(index, removed[i]!, Number(abs), now, 0, 0, 0),
              )
            : [],
        ),
      ),
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
  async get(ref: SessionRef, now: number, options?: ReadOptions): Promise<SessionData | undefined> {
    const key = this.#key(ref.id)
    const touch = options?.touch !== false
    const cached = options?.fresh ? undefined : this.#servable(ref, key, now, touch)
    if (cached) {
      mark('gatehouse.session.cache', { [ATTR.cacheResult]: 'hit' })
      return cached
    }
    if (this.#cache && !options?.fresh) mark('gatehouse.session.cache', { [ATTR.cacheResult]: 'miss' })
    const ticket = this.#cache?.begin(key)
    let session: SessionData | undefined
    try {
      const row = await guarded(() => this.#redis.hmget(key, 'login', 'tokens', 'v', 'idle', 'abs'))
      if (row[0] === null) return undefined
      const { idle } = clearFields(row)
      if (now >= idle) return undefined
      if (touch && this.#touchDue(idle, now)) {
        try {
          const touched = await guarded(() =>
            this.#redis.ghGetAndTouch(key, now, this.#idle, this.#touchEvery),
          )
          return touched ? this.#open(ref, touched, now) : undefined
        } catch (err) {
          // A Redis that refuses writes (full under noeviction, a replica,
          // an ACL without scripts) still served the read: the session is live until the idle
          // expiry it has, so it is served unslid, and the next read tries
          // the slide again. Failing it instead answered every session
          // past its touch interval 503 while Redis was full.
          this.#refusals?.noticed(err)
          if (!writeRefusedByRedis(err)) throw err
        }
      }
      session = this.#open(ref, row, now)
      return session
    } finally {
      if (ticket) this.#cache!.settle(ticket, session)
    }
  }

  /** `get`'s answer from the local copy, when `get` would serve it; else Redis must be asked. */
  peek(ref: SessionRef, now: number): SessionData | typeof NOT_IN_MEMORY {
    // Uncounted: a copy that is not served is counted by the `get` that follows.
    const served = this.#servable(ref, this.#key(ref.id), now, true, false)
    if (served === undefined) return NOT_IN_MEMORY
    this.#cache!.counted()
    return served
  }

  /** The local copy of the session, if it may be served for this read. */
  #servable(
    ref: SessionRef,
    key: string,
    now: number,
    touch: boolean,
    count = true,
  ): SessionData | undefined {
    const cached = this.#cache?.get(key, count)
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

  /** A row of `login, tokens, v, idle, abs`, opened with the request's key. */
  #open(ref: SessionRef, row: (string | null)[], now: number): SessionData | undefined {
    const [login, tokens] = row
    const { version, idle, abs: absoluteExpiresAt } = clearFields(row)
    if (now >= absoluteExpiresAt) return undefined
    const fixed = openField(ref, 'login', login)
    return {
      id: ref.id,
      key: ref.key,
      idp: fixed.idp ?? SHORTHAND_PROVIDER,
      ...(fixed.registration ? { registration: fixed.registration } : {}),
      sub: fixed.sub,
      sid: fixed.sid,
      claims: fixed.claims,
      tokens: openField(ref, 'tokens', tokens),
      version,
      createdAt: fixed.createdAt,
      absoluteExpiresAt,
      idleExpiresAt: idle,
      logoutHandle: fixed.logoutHandle,
      ...(fixed.dpopKey ? { dpopKey: fixed.dpopKey } : {}),
      ...(fixed.resources ? { resources: fixed.resources } : {}),
    }
  }

  updateTokens(ref: SessionRef, expectedVersion: number, tokens: TokenSet): Promise<UpdateResult> {
    const key = this.#key(ref.id)
    const sealed = sealField(ref, 'tokens', tokens)
    const expiry = refreshExpiry(tokens)
    return this.#writing(ref.id, () =>
      this.#confirm
        ? (this.#confirmed(key, (p) =>
            p.ghUpdateTokens(key, expectedVersion, sealed, expiry),
          ) as Promise<UpdateResult>)
        : this.#redis.ghUpdateTokens(key, expectedVersion, sealed, expiry),
    )
  }

  onChange(listener: (id: string) => void): () => void {
    return this.#hints.add(listener)
  }

  async delete(id: string): Promise<boolean> {
    const key = this.#key(id)
    const [ix, data, removed] = await this.#writing(id, () =>
      this.#confirm
        ? (this.#confirmed(key, (p) => p.ghDelete(key)) as Promise<[string | null, string | null, number]>)
        : this.#redis.ghDelete(key),
    )
    await this.#unindex(
      id,
      ix !== null ? this.#indexKeys(parsed<IndexNames>(ix)) : this.#previousIndexKeys(data),
    )
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

  async noteReplaced(id: string, ttlMs: number): Promise<void> {
    const key = this.#keys.replaced(id)
    const ttl = Math.max(1, Math.floor(ttlMs))
    // Confirmed on a replica as the delete that follows is: a marker lost
    // in a failover that the delete survived would have the replaced
    // session's requests clear the browser's new cookie.
    await this.#noticing<unknown>(() =>
      this.#confirm
        ? this.#confirm.write(key, (p) => void p.set(key, '1', 'PX', ttl))
        : this.#redis.set(key, '1', 'PX', ttl),
    )
  }

  async replaced(id: string): Promise<boolean> {
    return (await guarded(() => this.#redis.exists(this.#keys.replaced(id)))) > 0
  }

  async endPreviousFormat(id: string): Promise<EndedSession | undefined> {
    const key = this.#key(id)
    const found = await this.#writing(id, () =>
      this.#confirm
        ? (this.#confirmed(key, (p) => p.ghEndPreviousFormat(key)) as Promise<[string, string | null] | null>)
        : this.#redis.ghEndPreviousFormat(key),
    )
    if (!found) return undefined
    const [data, tokens] = found
    await this.#unindex(id, this.#previousIndexKeys(data))
    const { refreshToken } = tokens === null ? {} : parsed<TokenSet>(tokens)
    const { sub, sid } = parsed<PreviousData>(data)
    return {
      ...(typeof refreshToken === 'string' ? { refreshToken } : {}),
      ...(typeof sub === 'string' ? { sub } : {}),
      ...(typeof sid === 'string' ? { sid } : {}),
    }
  }

  /**
   * The session is gone; its index entries are on other keys (other
   * slots), so they go in steps of their own. A failure here leaves
   * members that listing prunes.
   */
  async #unindex(id: string, indexes: string[]): Promise<void> {
    await guarded(() => Promise.all(indexes.map((index) => this.#writer.zrem(index, id))))
  }

  async noteSidLoggedOut(registration: ClientRegistration, sid: string, ttlMs: number): Promise<void> {
    const key = this.#keys.loggedOutSid(this.#hashes.current('sid', loggedOutName(registration, sid)))
    const ttl = Math.max(1, Math.floor(ttlMs))
    // Confirmed on a replica as the indexes are: a note lost in a failover
    // is a sign-in that outlives its IdP session's logout.
    await guarded<unknown>(() =>
      this.#confirm
        ? this.#confirm.write(key, (p) => void p.set(key, '1', 'PX', ttl))
        : this.#redis.set(key, '1', 'PX', ttl),
    )
  }

  async sidLoggedOut(registration: ClientRegistration, sid: string): Promise<boolean> {
    // Under every secret's hash, as the indexes are found; one key per
    // call, as each may live on another node of a Cluster.
    const names = this.#hashes.all('sid', loggedOutName(registration, sid))
    const found = await guarded(() =>
      Promise.all(names.map((name) => this.#redis.exists(this.#keys.loggedOutSid(name)))),
    )
    return found.some((n) => n > 0)
  }

  async noteSubLoggedOut(
    registration: ClientRegistration,
    sub: string,
    logout: Required<UserLoggedOut>,
    ttlMs: number,
  ): Promise<void> {
    const key = this.#keys.loggedOutSub(this.#hashes.current('sub', loggedOutName(registration, sub)))
    const args = [Math.floor(logout.at), Math.floor(logout.iat), Math.max(1, Math.floor(ttlMs))] as const
    // Confirmed on a replica as the indexes are. Two logouts of the user
    // within the note's time leave the latest of each time (the script): a
    // sign-in started between them ends all the same, as the later
    // logout's listing would have ended it.
    await guarded(() =>
      this.#confirm
        ? this.#confirmed(key, (p) => p.ghNoteSubLoggedOut(key, ...args))
        : this.#redis.ghNoteSubLoggedOut(key, ...args),
    )
  }

  async subLoggedOutAt(registration: ClientRegistration, sub: string): Promise<UserLoggedOut | undefined> {
    // Under every secret's hash, one key per call (a Cluster may hold each on another node).
    const names = this.#hashes.all('sub', loggedOutName(registration, sub))
    const found = await guarded(() =>
      Promise.all(names.map((name) => this.#redis.get(this.#keys.loggedOutSub(name)))),
    )
    const notes = found.flatMap((note): UserLoggedOut[] => {
      // `<at>` from a release before `iat` was noted, else `<at>.<iat>` (NOTE_SUB_LOGGED_OUT).
      const [, at, iat] = /^(\d{1,16})(?:\.(\d{1,16}))?$/.exec(note ?? '') ?? []
      if (at === undefined || Number(at) <= 0) return []
      return [iat === undefined ? { at: Number(at) } : { at: Number(at), iat: Number(iat) }]
    })
    return notes.length > 0 ? notes.reduce(latestLogout) : undefined
  }

  idsBySub(sub: string, idp: string = SHORTHAND_PROVIDER, issuedBy?: IssuedBy): Promise<string[]> {
    return this.#idsBy('sub', sub, idp, issuedBy)
  }

  idsBySid(sid: string, idp: string = SHORTHAND_PROVIDER, issuedBy?: IssuedBy): Promise<string[]> {
    return this.#idsBy('sid', sid, idp, issuedBy)
  }

  /**
   * A user's sessions with when each began, from the same indexes as
   * `idsBySub`: each index on its own key and each record on its own, so
   * on a Cluster, where they are on several masters, no step spans two.
   */
  async sessionsOfUser(
    sub: string,
    idp: string = SHORTHAND_PROVIDER,
    issuedBy?: IssuedBy,
  ): Promise<SessionOfUser[]> {
    // Read only: a removal would race the sign-ins this bound is weighed
    // against, whose records are not all written yet (`#indexAgain`
    // closes that race, but leaves a moment without the entry).
    const members = await this.#membersBy('sub', sub, idp, issuedBy, false)
    // A record written before `c` was: older than any written since.
    return members.map(({ id, created, refreshTokenExpiresAt }) => ({
      id,
      createdAt: created === null ? 0 : Number(created),
      ...(refreshTokenExpiresAt === undefined ? {} : { refreshTokenExpiresAt }),
    }))
  }

  async #idsBy(
    claim: IndexedClaim,
    value: string,
    idp: string,
    issuedBy: IssuedBy | undefined,
  ): Promise<string[]> {
    return (await this.#membersBy(claim, value, idp, issuedBy)).map((member) => member.id)
  }

  /**
   * Sessions indexed under any secret's hash of the value, so a rotation
   * loses none; `prune`: take out the members whose session is gone.
   */
  async #membersBy(
    claim: IndexedClaim,
    value: string,
    idp: string,
    issuedBy: IssuedBy | undefined,
    prune = true,
  ): Promise<LiveMember[]> {
    const names = this.#hashes.all(claim, value)
    const lists = await Promise.all(
      names.map((name) => this.#liveMembers(this.#indexKey(claim, name, idp), issuedBy, prune)),
    )
    const byId = new Map(lists.flat().map((member) => [member.id, member]))
    return [...byId.values()]
  }

  /**
   * Members of an index whose session is alive (and, with `issuedBy`, of
   * the registration it wants): listed from the index, then each session
   * asked on its own key, then the vanished ones removed. Ids are never
   * reused, so removing one whose session is gone is safe once its record
   * is asked again (`#indexAgain`): a record may be missing only because
   * its sign-in has not written it yet.
   */
  async #liveMembers(index: string, issuedBy: IssuedBy | undefined, prune: boolean): Promise<LiveMember[]> {
    const now = this.#now()
    return guarded(async () => {
      const ids = await this.#redis.ghIndexMembers(index, now)
      const rows = await Promise.all(
        ids.map((id) => this.#redis.hmget(this.#key(id), 'idle', 'ix', 'c', 'abs', 'v', 'rx')),
      )
      const gone = ids.filter((_, i) => rows[i]![0] === null)
      if (prune && gone.length > 0) {
        await this.#redis.zrem(index, ...gone)
        await this.#indexAgain(gone, now)
      }
      return ids.flatMap((id, i) => {
        const [idle, ix, created, abs, version, rx] = rows[i]!
        // Past either expiry, as `get` finds it (the previous version's records have no `abs`).
        if (typeof idle !== 'string' || Number(idle) <= now) return []
        if (typeof abs === 'string' && Number(abs) <= now) return []
        if (issuedBy !== undefined && !issuedBy(typeof ix === 'string' ? registrationIn(ix) : undefined))
          return []
        const expiry = refreshExpiryOf(rx ?? null, version ?? null)
        return [
          {
            id,
            created: created ?? null,
            ...(expiry === undefined ? {} : { refreshTokenExpiresAt: expiry }),
          },
        ]
      })
    })
  }

  async #confirmed(key: string, queue: (pipeline: PipelineScripts) => void): Promise<unknown> {
    const [reply] = await this.#confirm!.write(key, (p) => queue(p as unknown as PipelineScripts))
    return reply
  }

  async ping(): Promise<void> {
    // Sign-ins, refreshes and sign-outs write over the confirming
    // connection, made apart from the command one: asking only the command
    // connection called the store ready, and /readyz 200, while every
    // write answered 503 (a Cluster connection's connect can be retried
    // for seconds after the other's has succeeded). A PING there waits
    // behind a WAIT in flight, which gives up within half the command timeout.
    await guarded(() =>
      Promise.all([this.#redis.ping(), ...(this.#writer === this.#redis ? [] : [this.#writer.ping()])]),
    )
  }

  async refusals(): Promise<readonly StoreRefusalReport[]> {
    if (!this.#refusals) return []
    const found = await guarded(() => this.#refusals!.recent())
    // Without scripts, or the keys they write, no refresh can be
    // coordinated or stored: not ready, and a rollout that brought the ACL
    // halts. A full Redis, or one short of replicas, serves reads, and every
    // instance shares it.
    return found.map((refusal) => ({
      detail: summarizeRefusal(refusal),
      degraded: refusal.kind === 'full' || refusal.kind === 'replicas',
    }))
  }

  report(): StoreReport {
    const copy = this.#cache
    if (!copy && !this.cacheOff) return {}
    return { localCache: { enabled: () => copy !== undefined && !copy.refused, ...(copy ? { copy } : {}) } }
  }

  /** Stops the local copy; the connection is its owner's to close. */
  async close(stop?: AbortSignal): Promise<void> {
    await this.#cache?.close(stop)
  }

  /**
   * A write, followed by dropping the local copy whether or not it went
   * through (a timed-out write may still have landed), so this instance
   * reads its own writes without waiting for Redis's invalidation.
   */
  async #writing<T>(id: string, write: () => Promise<T>): Promise<T> {
    try {
      return await this.#noticing(write)
    } finally {
      this.#cache?.forget(this.#key(id))
    }
  }

  /** `guarded`, telling the refusal check of a failure, which may be one (a write refused OOM or NOPERM). */
  async #noticing<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await guarded(call)
    } catch (err) {
      this.#refusals?.noticed(err)
      throw err
    }
  }

  #key(id: string): string {
    return this.#keys.session(id)
  }

  /** The session id of a record's key (`#key`'s inverse); `undefined` for another key under the prefix. */
  #idOf(key: string): string | undefined {
    const { sessions } = this.#keys
    if (!key.startsWith(`${sessions}{`) || !key.endsWith('}')) return undefined
    return key.slice(sessions.length + 1, -1)
  }

  /** An index key, named by a hash (or, for the previous version's records, by the plain value). */
  #indexKey(claim: IndexedClaim, name: string, idp: string | undefined): string {
    return this.#keys.index(claim, name, idp)
  }

  #indexKeys(ix: IndexNames): string[] {
    const idp = typeof ix.idp === 'string' ? ix.idp : undefined
    return (['sub', 'sid'] as const).flatMap((claim) => {
      const name = ix[claim]
      return typeof name === 'string' ? [this.#indexKey(claim, name, idp)] : []
    })
  }

  /** The previous version's index keys, named by the plain sub and sid in its `data`. */
  #previousIndexKeys(data: string | null): string[] {
    if (data === null) return []
    const { sub, sid } = parsed<PreviousData>(data)
    return this.#indexKeys({
      ...(typeof sub === 'string' ? { sub } : {}),
      ...(typeof sid === 'string' ? { sid } : {}),
    })
  }
}

/** A token set's refresh expiry as CREATE and UPDATE_TOKENS take it: epoch ms, or '' when the IdP did not say. */
function refreshExpiry(tokens: TokenSet): string {
  const at = tokens.refreshTokenExpiresAt
  return at === undefined || !Number.isFinite(at) ? '' : String(Math.floor(at))
}

/**
 * The refresh token's expiry a record's `rx` says, when it is of the
 * tokens' current version `v`: an instance of a release before `rx` was
 * written rotates the tokens without it, and the expiry of a token rotated
 * away says nothing of the one that replaced it.
 */
function refreshExpiryOf(rx: string | null, version: string | null): number | undefined {
  const [, of, at] = /^(\d{1,16}):(\d{0,16})$/.exec(rx ?? '') ?? []
  return at && of === version ? Number(at) : undefined
}

/** The latest time a `Date` holds (ECMA-262: 8.64e15 ms from the epoch): no expiry the gateway writes is later. */
const LATEST_TIME = 8.64e15

/**
 * The clear fields of a row of `login, tokens, v, idle, abs`, as the
 * gateway writes them: a version (a count) and two epoch-ms times. They
 * are not sealed, so they are checked: a record changed in Redis whose
 * expiries are not times would be served with no expiry checked here and
 * fail where a time is printed (a 500 at /auth/user), and one whose
 * version is not a count would let a refresh spend the refresh token, fail
 * its compare-and-set and replay it. Such a record is refused as a changed
 * seal is (`malformed`): 401, one warning, the record left to expire.
 */
function clearFields(row: readonly (string | null)[]): { version: number; idle: number; abs: number } {
  const [, , v, idle, abs] = row
  const fields = { version: count(v), idle: time(idle), abs: time(abs) }
  if (Number.isNaN(fields.version) || Number.isNaN(fields.idle) || Number.isNaN(fields.abs))
    throw gatehouseError('GATEHOUSE_ERR_SESSION_UNREADABLE', undefined, 'malformed')
  return fields
}

/** A count as HINCRBY keeps one, or NaN. */
function count(text: string | null | undefined): number {
  const n = text ? Number(text) : Number.NaN
  return Number.isSafeInteger(n) && n >= 0 ? n : Number.NaN
}

/** An epoch-ms time as the store writes one, or NaN. */
function time(text: string | null | undefined): number {
  const ms = text ? Number(text) : Number.NaN
  return Number.isFinite(ms) && ms >= 0 && ms <= LATEST_TIME ? ms : Number.NaN
}

/** The registration an `ix` field records, if it records one as a session writes it. */
function registrationIn(ix: string): ClientRegistration | undefined {
  const { registration } = parsed<IndexNames>(ix)
  return typeof registration?.issuer === 'string' && typeof registration.clientId === 'string'
    ? { issuer: registration.issuer, clientId: registration.clientId }
    : undefined
}

/**
 * The clear JSON fields, parsed without trusting them: they are not sealed,
 * so a value someone changed in Redis reads as empty instead of failing
 * the request that deletes the session.
 */
function parsed<T extends object>(text: string): Partial<T> {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null ? (value as Partial<T>) : {}
  } catch {
    return {}
  }
}
