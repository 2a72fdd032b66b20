import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { Cluster } from 'ioredis'
import { RefreshWaitTimeoutError } from '../errors.js'
import { guarded, type RedisClient, replyWord } from '../redis/connection.js'
import type { ReplicaConfirmation } from '../redis/durability.js'
import { type RedisKeys, redisKeys } from '../redis/keys.js'
import type { StoreRefusals } from '../redis/refusals.js'
import {
  ACQUIRE_LOCK,
  ANSWERED_RELEASE,
  IDLE_RELEASE,
  RELEASE_LOCK,
  RENEW_LOCK,
} from './redis-lock-scripts.js'
import type { HeldLock, LockService, Release } from './types.js'

/**
 * How long a waiter whose poll found the lock gone waits for the release's
 * message before it takes the release as unheard, ms: the message and the
 * poll's answer come on two connections, in either order. On a Cluster the
 * message goes from the lock's master over the cluster bus to the node the
 * waiter subscribed at, and came up to 44 ms after the poll's answer (3 of
 * 500 past the 20 ms this was): an idle release was then taken for an
 * unheard one, and the request answered 503 (an unheard one now sends the
 * waiter round to look again, types.ts; waiting here still spares the IdP
 * a call after a failure said in time). It delays only the answer to a
 * release truly unheard (a lapse, a message lost in a reconnect).
 */
const UNHEARD_RELEASE_GRACE_MS = 250

/**
 * The message published before the plain one for a release that says how
 * (redis-lock-scripts.ts). A plain release says nothing: a waiter takes it
 * as one that may have failed, as it did before these existed.
 */
const RELEASE_PREFIXES: Partial<Record<Release, string>> = { idle: IDLE_RELEASE, answered: ANSWERED_RELEASE }

/** How a release message says the lock was given back, and the lock's key. */
function heardRelease(message: string): [Release, string] {
  if (message.startsWith(IDLE_RELEASE)) return ['idle', message.slice(IDLE_RELEASE.length)]
  if (message.startsWith(ANSWERED_RELEASE)) return ['answered', message.slice(ANSWERED_RELEASE.length)]
  return ['released', message]
}

/** Whether Redis refused a command for the ACL (`NOPERM`), which no try again changes. */
function refusedByAcl(err: unknown): boolean {
  return replyWord(err) === 'NOPERM'
}

/** Longest pause between two tries to give back a lock while the store does not answer, ms. */
const GIVE_BACK_MAX_PAUSE_MS = 1_000

/** Options of `RedisLockService`. */
export interface RedisLockOptions {
  /** The command connection (from `createRedisClient`); its owner closes it. */
  readonly client: RedisClient
  /**
   * Confirm each acquisition on a replica before it counts (see
   * `ReplicaConfirmation`): a lock the primary granted and then lost in a
   * failover would let a second instance redeem the same refresh token.
   */
  readonly confirm?: ReplicaConfirmation
  /** Default `gatehouse:`. */
  readonly keyPrefix?: string
  /** Renew a held lock this often, ms. Default: a third of its TTL. */
  readonly renewEveryMs?: number
  /** Safety-net poll while waiting, in case a release message is lost, ms. Default 100. */
  readonly pollEveryMs?: number
  /** Told of each acquire that failed, to check whether Redis refuses scripts or writes (refusals.ts). */
  readonly refusals?: Pick<StoreRefusals, 'noticed'>
}

interface LockScripts {
  ghAcquireLock(key: string, owner: string, ttl: number): Promise<'OK' | null>
  ghRenewLock(key: string, owner: string, ttl: number): Promise<number>
  ghReleaseLock(key: string, owner: string, channel: string, message: string, idle?: string): Promise<number>
}

/**
 * A cluster-wide lock: `SET {prefix}lock:{key} owner NX PX ttl`, renewed
 * while held so a refresh slower than the TTL keeps it (oauth2-proxy's
 * fixed 2 s lock did not, and replayed rotated tokens: #1580, #3456), and
 * released by compare-and-delete so a holder whose lock lapsed cannot
 * delete the next owner's. Waiters hear of a release on the
 * `{prefix}lock-released` channel, over a second connection this service
 * opens (a subscribed connection cannot send other commands), with a slow
 * poll as a safety net for a message lost while that connection was down.
 *
 * The lock key carries a hash tag, `{prefix}lock:{<key>}`, so a Redis
 * Cluster keeps each lock on one slot; the release channel is plain pub/sub,
 * which a Cluster delivers to subscribers on every node.
 */
export class RedisLockService implements LockService {
  readonly #redis: RedisClient & LockScripts
  readonly #confirm: ReplicaConfirmation | undefined
  readonly #keys: RedisKeys
  readonly #channel: string
  readonly #renewEvery: number | undefined
  readonly #pollEvery: number
  readonly #refusals: Pick<StoreRefusals, 'noticed'> | undefined
  readonly #renewals = new Set<NodeJS.Timeout>()
  readonly #givingBack = new Set<NodeJS.Timeout>()
  readonly #waiters = new Map<string, Set<(how: Release) => void>>()
  #subscriber: RedisClient | undefined
  #subscribed: Promise<unknown> | undefined
  #closed = false

  constructor(options: RedisLockOptions) {
    const redis = options.client as RedisClient & Partial<LockScripts>
    if (!redis.ghRenewLock) {
      redis.defineCommand('ghAcquireLock', { numberOfKeys: 1, lua: ACQUIRE_LOCK })
      redis.defineCommand('ghRenewLock', { numberOfKeys: 1, lua: RENEW_LOCK })
      redis.defineCommand('ghReleaseLock', { numberOfKeys: 1, lua: RELEASE_LOCK })
    }
    this.#redis = redis as RedisClient & LockScripts
    this.#confirm = options.confirm
    // An acquire's doubtful lock is given back over the connection its SET
    // went over, so the give-back runs after the SET whenever both do.
    const writer = options.confirm?.client as (RedisClient & Partial<LockScripts>) | undefined
    if (writer && !writer.ghAcquireLock)
      writer.defineCommand('ghAcquireLock', { numberOfKeys: 1, lua: ACQUIRE_LOCK })
    if (writer && !writer.ghReleaseLock)
      writer.defineCommand('ghReleaseLock', { numberOfKeys: 1, lua: RELEASE_LOCK })
    this.#keys = redisKeys(options.keyPrefix)
    this.#channel = this.#keys.lockReleased
    this.#renewEvery = options.renewEveryMs
    this.#pollEvery = options.pollEveryMs ?? 100
    this.#refusals = options.refusals
  }

  async tryAcquire(key: string, ttlMs: number): Promise<HeldLock | null> {
    const lockKey = this.#lockKey(key)
    const owner = randomBytes(16).toString('base64url')
    const ok = await this.#acquire(key, owner, ttlMs)
    if (ok !== 'OK') return null
    const renewal = setInterval(
      () => {
        this.#redis.ghRenewLock(lockKey, owner, ttlMs).then(
          (renewed) => {
            // Lost (it lapsed during an outage and someone else took it):
            // renewing further would be futile, never harmful.
            if (renewed === 0) this.#stopRenewal(renewal)
          },
          (err: unknown) => {
            // Redis is away; if it stays away past the TTL the lock lapses,
            // and waiters time out with a 503 rather than refresh on their own.
            // An ACL that refuses the script is no outage: the holder may be
            // storing rotated tokens, so the lock is kept without one.
            if (refusedByAcl(err)) this.#renewWithoutScript(lockKey, owner, ttlMs, renewal)
          },
        )
      },
      this.#renewEvery ?? Math.max(10, Math.floor(ttlMs / 3)),
    )
    renewal.unref()
    this.#renewals.add(renewal)
    let released = false
    return {
      release: async (how = 'released') => {
        if (released) return
        released = true
        this.#stopRenewal(renewal)
        await this.#giveBack(this.#redis, key, owner, ttlMs, RELEASE_PREFIXES[how])
      },
    }
  }

  async waitForRelease(key: string, timeoutMs: number): Promise<Release> {
    const lockKey = this.#lockKey(key)
    let wake!: (how: Release) => void
    let timer: NodeJS.Timeout | undefined
    let poll: NodeJS.Timeout | undefined
    const released = new Promise<Release>((resolve, reject) => {
      wake = resolve
      timer = setTimeout(() => reject(new RefreshWaitTimeoutError(key, timeoutMs)), timeoutMs)
    })
    // Listening before subscribing: a message that arrives with, or right
    // after, the subscription's acknowledgement still finds this waiter.
    let set = this.#waiters.get(key)
    if (!set) {
      set = new Set()
      this.#waiters.set(key, set)
    }
    set.add(wake)
    // A lock found gone at the first look was free before this waiter
    // waited on it. One a later poll finds gone was given back, and the
    // release's message, published with the delete, may be a moment behind
    // the poll's answer on the other connection: it is given that moment to
    // say how before the waiter settles for not knowing.
    let first = true
    let unheard: NodeJS.Timeout | undefined
    const check = () => {
      const initial = first
      first = false
      this.#redis.exists(lockKey).then(
        (n) => {
          if (n !== 0) return
          if (initial) wake('free')
          else unheard ??= setTimeout(() => wake('unheard'), UNHEARD_RELEASE_GRACE_MS)
        },
        // A failed poll is retried at the next tick; the timeout bounds the wait.
        () => {},
      )
    }
    try {
      await Promise.race([released, guarded(() => this.#subscribe())])
      poll = setInterval(check, this.#pollEvery)
      // Subscribed first, then checked: a release between the caller's
      // failed acquire and the subscription is not missed.
      check()
      return await released
    } finally {
      clearTimeout(timer)
      clearTimeout(unheard)
      clearInterval(poll)
      const waiters = this.#waiters.get(key)
      waiters?.delete(wake)
      if (waiters?.size === 0) this.#waiters.delete(key)
    }
  }

  /** Stops renewals and give-backs, wakes local waiters and closes the subscriber connection. */
  async close(): Promise<void> {
    this.#closed = true
    for (const renewal of this.#renewals) clearInterval(renewal)
    this.#renewals.clear()
    for (const retry of this.#givingBack) clearTimeout(retry)
    this.#givingBack.clear()
    for (const set of [...this.#waiters.values()]) for (const wake of [...set]) wake('released')
    this.#waiters.clear()
    this.#subscriber?.disconnect()
    this.#subscriber = undefined
    this.#subscribed = undefined
  }

  async #acquire(key: string, owner: string, ttlMs: number): Promise<unknown> {
    const lockKey = this.#lockKey(key)
    const writer = (this.#confirm?.client ?? this.#redis) as RedisClient & LockScripts
    try {
      if (!this.#confirm) return await guarded(() => this.#redis.ghAcquireLock(lockKey, owner, ttlMs))
      const [ok] = await this.#confirm.write(lockKey, (p) =>
        (p as unknown as Pick<LockScripts, 'ghAcquireLock'>).ghAcquireLock(lockKey, owner, ttlMs),
      )
      return ok
    } catch (err) {
      this.#refusals?.noticed(err)
      // Unconfirmed, or unanswered (its SET may have run, or may yet run
      // when the store answers again), is not held: give it back, so
      // waiters need not sit out the TTL, and let the caller answer 503.
      await this.#giveBack(writer, key, owner, ttlMs, undefined).catch(() => {})
      throw err
    }
  }

  /**
   * Deletes `owner`'s lock on `key` if it is still there, waking waiters
   * (with `first`, a release message that says how, published before the plain one);
   * rejects if the store did not answer, and then tries again in the
   * background until it does or the lock would have lapsed by itself.
   * A lock no holder uses would otherwise stay for its whole TTL, which is
   * long (it must outlast a store outage under a live holder), and every
   * refresh of its session wait on it: after a 3 s Sentinel failover mid-
   * refresh, one session's requests answered 503 for 40 s, each after
   * `tokens.refreshWait`. Compare-and-delete: a try that comes late never
   * deletes another owner's lock, so trying again is always safe.
   */
  async #giveBack(
    client: RedisClient & LockScripts,
    key: string,
    owner: string,
    ttlMs: number,
    first: string | undefined,
  ): Promise<void> {
    const lockKey = this.#lockKey(key)
    const send = () =>
      first === undefined
        ? client.ghReleaseLock(lockKey, owner, this.#channel, key)
        : client.ghReleaseLock(lockKey, owner, this.#channel, key, `${first}${key}`)
    try {
      await guarded(send)
    } catch (err) {
      // An ACL that refuses the script refuses every try until an operator
      // changes it; the lock, if its acquire took it at all, lapses alone.
      if (refusedByAcl(err)) throw err
      const until = performance.now() + ttlMs
      const retry = (pause: number) => {
        if (this.#closed || performance.now() + pause >= until) return
        const timer = setTimeout(() => {
          this.#givingBack.delete(timer)
          send().catch(() => retry(Math.min(pause * 2, GIVE_BACK_MAX_PAUSE_MS)))
        }, pause)
        // A give-back must not hold a closing process open.
        timer.unref()
        this.#givingBack.add(timer)
      }
      retry(50)
      throw err
    }
  }

  /**
   * Renews a lock with plain commands while an ACL refuses scripts. The
   * holder may be offering rotated tokens to the store (late-writes.ts,
   * `storeLater`), and a lock that lapsed meanwhile let the first instance
   * to take it once scripts ran again redeem the refresh token the holder
   * had spent. Not atomic, but safe while scripts are refused: taking a
   * lock is a script (`ACQUIRE_LOCK`), so no other owner can appear between
   * the `GET` and the `PEXPIRE`; at worst, once they run again, another's
   * fresh lock is lengthened, which delays its waiters and replays nothing.
   */
  #renewWithoutScript(lockKey: string, owner: string, ttlMs: number, renewal: NodeJS.Timeout): void {
    this.#redis
      .get(lockKey)
      .then(async (held) => {
        if (held === owner) await this.#redis.pexpire(lockKey, ttlMs)
        else this.#stopRenewal(renewal)
      })
      // Redis is away: the next renewal tries again.
      .catch(() => {})
  }

  #stopRenewal(renewal: NodeJS.Timeout): void {
    clearInterval(renewal)
    this.#renewals.delete(renewal)
  }

  #subscribe(): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error('the lock service is closed'))
    if (!this.#subscribed) {
      // Same timeouts and reconnection as the command connection; ioredis
      // resubscribes by itself after a reconnect. An offline queue lets
      // SUBSCRIBE wait for the first connect, bounded by the command timeout.
      // One retry sends it again after a connection cut before its answer
      // came: failed with it (the command connection's maxRetriesPerRequest
      // of 0), it answered every request then waiting 503, with Redis up.
      // A second failed connect still fails it at once: Redis is down. A
      // Cluster's subscriber is ioredis's own, which retries by itself.
      const subscriber =
        this.#redis instanceof Cluster
          ? this.#redis.duplicate([], { enableOfflineQueue: true })
          : this.#redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: 1 })
      subscriber.on('error', () => {})
      subscriber.on('message', (_channel: string, message: string) => {
        const [how, key] = heardRelease(message)
        const set = this.#waiters.get(key)
        if (set) for (const wake of [...set]) wake(how)
      })
      this.#subscriber = subscriber
      this.#subscribed = subscriber.subscribe(this.#channel).catch((err: unknown) => {
        this.#subscribed = undefined
        this.#subscriber = undefined
        subscriber.disconnect()
        throw err
      })
    }
    return this.#subscribed
  }

  #lockKey(key: string): string {
    return this.#keys.lock(key)
  }
}
