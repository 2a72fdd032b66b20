import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { guarded } from '../session/redis-connection.js'
import { RELEASE_LOCK, RENEW_LOCK } from '../session/redis-scripts.js'
import { refreshWaitTimeout } from './lock-errors.js'
import type { HeldLock, LockService } from './types.js'

export interface RedisLockOptions {
  readonly client: Redis
  readonly keyPrefix: string
  /** Safety-net poll while waiting, in case a release message is lost, ms. */
  readonly pollEveryMs?: number
}

interface LockScripts {
  ghRenewLock(key: string, owner: string, ttl: number): Promise<number>
  ghReleaseLock(key: string, owner: string): Promise<number>
}

/**
 * A cluster-wide lock: `SET key owner NX PX ttl`, renewed at a third of its
 * TTL while held, so a refresh slower than the TTL keeps it (oauth2-proxy's
 * fixed 2 s lock did not, and replayed rotated tokens: #1580, #3456), and
 * released by compare-and-delete so a holder whose lock expired cannot
 * delete the next owner's. Waiters hear of the release on a pub/sub
 * channel, with a slow poll as a safety net.
 */
export class RedisLockService implements LockService {
  readonly #redis: Redis & LockScripts
  readonly #prefix: string
  readonly #channel: string
  readonly #pollEvery: number
  #subscriber: Redis | undefined
  #subscribed: Promise<unknown> | undefined
  readonly #waiters = new Map<string, Set<() => void>>()

  constructor(options: RedisLockOptions) {
    const redis = options.client as Redis & Partial<LockScripts>
    if (!redis.ghRenewLock) {
      redis.defineCommand('ghRenewLock', { numberOfKeys: 1, lua: RENEW_LOCK })
      redis.defineCommand('ghReleaseLock', { numberOfKeys: 1, lua: RELEASE_LOCK })
    }
    this.#redis = redis as Redis & LockScripts
    this.#prefix = options.keyPrefix
    this.#channel = `${options.keyPrefix}lock-released`
    this.#pollEvery = options.pollEveryMs ?? 100
  }

  async tryAcquire(key: string, ttlMs: number): Promise<HeldLock | null> {
    const lockKey = this.#lockKey(key)
    const owner = randomBytes(16).toString('base64url')
    const ok = await guarded(() => this.#redis.set(lockKey, owner, 'PX', ttlMs, 'NX'))
    if (ok !== 'OK') return null
    const renew = setInterval(
      () => {
        this.#redis.ghRenewLock(lockKey, owner, ttlMs).catch(() => {
          // Redis is away; the lock will lapse and waiters will time out
          // with a 503 rather than refresh on their own.
        })
      },
      Math.max(10, Math.floor(ttlMs / 3)),
    )
    renew.unref()
    let released = false
    return {
      release: async () => {
        if (released) return
        released = true
        clearInterval(renew)
        await guarded(async () => {
          await this.#redis.ghReleaseLock(lockKey, owner)
          await this.#redis.publish(this.#channel, key)
        })
      },
    }
  }

  async waitForRelease(key: string, timeoutMs: number): Promise<void> {
    await guarded(() => this.#subscribe())
    const lockKey = this.#lockKey(key)
    await new Promise<void>((resolve, reject) => {
      let done = false
      const finish = (err?: Error) => {
        if (done) return
        done = true
        clearTimeout(timer)
        clearInterval(poll)
        this.#waiters.get(key)?.delete(onRelease)
        if (err) reject(err)
        else resolve()
      }
      const onRelease = () => finish()
      const check = () => {
        this.#redis.exists(lockKey).then(
          (n) => n === 0 && finish(),
          () => {},
        )
      }
      let set = this.#waiters.get(key)
      if (!set) {
        set = new Set()
        this.#waiters.set(key, set)
      }
      set.add(onRelease)
      const timer = setTimeout(() => finish(refreshWaitTimeout(key, timeoutMs)), timeoutMs)
      const poll = setInterval(check, this.#pollEvery)
      // Subscribed first, then checked: a release between our failed
      // acquire and the subscription is not missed.
      check()
    })
  }

  async close(): Promise<void> {
    for (const set of this.#waiters.values()) for (const wake of set) wake()
    this.#waiters.clear()
    this.#subscriber?.disconnect()
  }

  #subscribe(): Promise<unknown> {
    if (!this.#subscribed) {
      const subscriber = this.#redis.duplicate({ enableOfflineQueue: true })
      subscriber.on('error', () => {})
      subscriber.on('message', (_channel: string, key: string) => {
        const set = this.#waiters.get(key)
        if (set) for (const wake of [...set]) wake()
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
    return `${this.#prefix}lock:${key}`
  }
}
