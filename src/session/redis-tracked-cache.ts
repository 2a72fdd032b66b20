/**
 * A per-instance copy of hot Redis keys, kept exact by Redis itself: server
 * assisted client-side caching (`CLIENT TRACKING ... BCAST PREFIX`). Redis
 * pushes the name of every key under the prefix that any client changes,
 * expires or evicts, and the copy is dropped when that message arrives.
 *
 * Four hazards decide the shape of this module:
 * - Invalidations travel on their own connection, so one can overtake the
 *   reply of a read that started before it. A read is cached only if no
 *   invalidation of its key arrived while it was in flight (`begin`/`settle`).
 * - While that connection is down, or was never set up, nothing is heard, so
 *   nothing is served: every disconnect empties the copy, and only reads
 *   begun after tracking is back on can fill it again (`#epoch`).
 * - A Redis that hangs, or a path that drops packets, keeps the socket open
 *   and silent. A heartbeat `PING` on the same connection proves that every
 *   invalidation sent before it has arrived; entries are served only while
 *   a heartbeat sent less than `maxStalenessMs` ago has come back. One that
 *   is not answered within `commandTimeout` starts the connection over.
 * - Some decisions must never use a copy at all (whether to redeem a refresh
 *   token); callers skip `get` for those and read Redis.
 */
import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'
import type { Redis } from 'ioredis'
import { BoundedMap } from '../bounded-map.js'
import type { RedisStoreConfig } from '../config/types.js'
import { closeRedisClient, createRedisClient, eventOrTimeout } from '../redis/connection.js'

const CHANNEL = '__redis__:invalidate'

export interface TrackedCacheOptions {
  /**
   * Where to open the invalidation connection, the cache's own: RESP2,
   * subscribed, never shared. Not a Cluster: tracking is per node, and one
   * connection hears only its own node's keys.
   */
  readonly url: string | Exclude<RedisStoreConfig, { kind: 'cluster' }>
  /** Keys under this prefix are tracked and may be cached. */
  readonly prefix: string
  /** Most entries held; the least recently used goes first. */
  readonly maxEntries: number
  /**
   * Budget of one command on the invalidation connection (arming it, each
   * heartbeat, and through Sentinel each question to a sentinel), ms: the
   * store's `session.storeTimeout`. Default 1000.
   */
  readonly commandTimeout?: number
  /** How often the invalidation connection proves it is live, ms. Default 250. */
  readonly heartbeatMs?: number
  /**
   * Longest an entry may be served without proof that no invalidation is
   * outstanding, ms. This bounds how late a change made by another
   * instance (a logout) can be seen when the connection silently stalls.
   * Default 1000.
   */
  readonly maxStalenessMs?: number
  /** Monotonic ms; default `performance.now`. */
  readonly clock?: () => number
}

/** A read in flight, from `begin` to `settle`. */
export interface ReadTicket {
  readonly key: string
  readonly n: number
  readonly epoch: number
}

/**
 * Events: `armed` when tracking is on and entries may be cached and served,
 * `disarmed` when that stops (and the copy was emptied), `unsupported` when
 * Redis refused `CLIENT TRACKING` (older than 6, or an ACL), after which
 * the cache stays empty and every read goes to Redis; `invalidated` with
 * the name of each key Redis reported changed, expired or evicted, cached
 * here or not.
 */
export class TrackedCache<V> extends EventEmitter {
  readonly #entries: BoundedMap<string, V>
  /** Reads in flight: key to the number of the latest read of it. */
  readonly #pending = new Map<string, number>()
  readonly #conn: Redis
  readonly #prefix: string
  readonly #staleness: number
  readonly #timer: NodeJS.Timeout
  readonly #clock: () => number
  #seq = 0
  /** Bumped whenever what was heard so far stops counting. */
  #epoch = 0
  #armed = false
  #freshUntil = 0
  #beating = false
  #closed = false
  #refused: Error | undefined
  #hits = 0
  #misses = 0

  constructor(options: TrackedCacheOptions) {
    super()
    this.#prefix = options.prefix
    this.#entries = new BoundedMap(options.maxEntries)
    this.#staleness = options.maxStalenessMs ?? 1_000
    this.#clock = options.clock ?? (() => performance.now())
    // RESP2: ioredis drops RESP3 `invalidate` pushes, but delivers the
    // RESP2 form, a message on __redis__:invalidate. The command budget is
    // the store's, not maxStalenessMs: that one bounds how long a copy is
    // served without proof, which a late heartbeat already stops; timing
    // the heartbeat out at it too emptied the copy and made the connection
    // again at every pause of a Redis the setting says to wait for, and
    // never armed on one slower than it.
    this.#conn = createRedisClient(options.url, {
      ...(options.commandTimeout === undefined ? {} : { commandTimeout: options.commandTimeout }),
      protocol: 2,
      autoResubscribe: false,
    }) as Redis
    this.#conn.on('messageBuffer', (channel: Buffer, keys: Buffer[] | null) => {
      if (channel.toString() === CHANNEL) this.#invalidate(keys)
    })
    this.#conn.on('ready', () => void this.#arm())
    this.#conn.on('close', () => this.#disarm())
    this.#timer = setInterval(() => this.#beat(), options.heartbeatMs ?? 250).unref()
  }

  get armed(): boolean {
    return this.#armed
  }

  /** Why Redis refused tracking, if it did; the cache then stays off. */
  get refused(): Error | undefined {
    return this.#refused
  }

  get size(): number {
    return this.#entries.size
  }

  /** Lookups answered from memory and lookups that went to Redis, since start; for metrics. */
  get stats(): { readonly hits: number; readonly misses: number } {
    return { hits: this.#hits, misses: this.#misses }
  }

  /**
   * The cached value, or `undefined` when absent or when the copy cannot be
   * trusted right now. `count: false` leaves the figures to a later lookup
   * of the same read (or to `counted`).
   */
  get(key: string, count = true): V | undefined {
    const value = this.#armed && this.#clock() < this.#freshUntil ? this.#entries.use(key) : undefined
    if (!count) return value
    if (value === undefined) {
      this.#misses++
      return undefined
    }
    this.#hits++
    return value
  }

  /** Counts a hit of an uncounted `get` whose value was served. */
  counted(): void {
    this.#hits++
  }

  /** Call before sending a read whose answer may be cached. */
  begin(key: string): ReadTicket | undefined {
    if (!this.#armed) return undefined
    const n = ++this.#seq
    this.#pending.set(key, n)
    return { key, n, epoch: this.#epoch }
  }

  /**
   * Call once the read is answered, or has failed (`undefined`). Caches the
   * value only if nothing invalidated the key, or the whole copy, meanwhile.
   */
  settle(ticket: ReadTicket, value: V | undefined): void {
    if (this.#pending.get(ticket.key) !== ticket.n) return
    this.#pending.delete(ticket.key)
    if (value === undefined || ticket.epoch !== this.#epoch) return
    this.#entries.set(ticket.key, value)
  }

  /**
   * Drops a key this instance has just written, or failed to write, so its
   * own next read goes to Redis without waiting for the invalidation.
   */
  forget(key: string): void {
    this.#entries.delete(key)
    this.#pending.delete(key)
  }

  /**
   * Resolves once every invalidation Redis sent before this call has been
   * applied: the reply to a `PING` queues behind them on the same connection.
   */
  async sync(): Promise<void> {
    await this.#conn.ping()
  }

  /** Resolves when armed, or after `timeoutMs` regardless: the store works unarmed, only slower. */
  whenArmed(timeoutMs = 2_000): Promise<void> {
    return this.#armed ? Promise.resolve() : eventOrTimeout(this, 'armed', timeoutMs)
  }

  async close(stop?: AbortSignal): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    this.#disarm()
    await closeRedisClient(this.#conn, undefined, stop)
  }

  async #arm(): Promise<void> {
    const epoch = ++this.#epoch
    try {
      const id = await this.#conn.client('ID')
      await this.#conn.call(
        'CLIENT',
        'TRACKING',
        'ON',
        'REDIRECT',
        String(id),
        'BCAST',
        'PREFIX',
        this.#prefix,
      )
      // Until this subscription is in place Redis drops the messages; reads
      // begun before arming carry an older epoch and are never cached.
      await this.#conn.subscribe(CHANNEL)
    } catch (err) {
      if (epoch !== this.#epoch || this.#closed) return
      if (isRefusal(err)) {
        this.#refused = err as Error
        this.emit('unsupported', err)
      }
      // A timeout leaves the connection in doubt: start over on a new one.
      else this.#conn.disconnect(true)
      return
    }
    if (epoch !== this.#epoch || this.#closed) return
    this.#reset()
    this.#armed = true
    this.#freshUntil = this.#clock() + this.#staleness
    this.emit('armed')
  }

  #disarm(): void {
    const was = this.#armed
    this.#armed = false
    this.#reset()
    if (was) this.emit('disarmed')
  }

  #reset(): void {
    this.#epoch++
    this.#entries.clear()
    this.#pending.clear()
  }

  /** A null list means Redis dropped everything it tracked (FLUSHALL, or a full tracking table). */
  #invalidate(keys: Buffer[] | null): void {
    if (keys === null) {
      this.#reset()
      return
    }
    for (const buffer of keys) {
      const key = buffer.toString()
      this.forget(key)
      this.emit('invalidated', key)
    }
  }

  #beat(): void {
    if (!this.#armed || this.#beating) return
    this.#beating = true
    const epoch = this.#epoch
    const sent = this.#clock()
    this.#conn.ping().then(
      () => {
        this.#beating = false
        if (epoch === this.#epoch) this.#freshUntil = sent + this.#staleness
      },
      () => {
        this.#beating = false
        if (epoch !== this.#epoch || this.#closed) return
        // Silent for the command timeout: stop serving and start over on a new socket.
        this.#disarm()
        this.#conn.disconnect(true)
      },
    )
  }
}

/** Redis answered with an error (as opposed to timing out or disconnecting). */
function isRefusal(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError'
}
