import t from 'tap'
import { createRedisClient, whenReady } from '../../src/redis/connection.js'
import type { HeldLock, LockService } from '../../src/tokens/types.js'
import { ORDERS, startAudienceStack } from '../helpers/audience-stack.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { pollUntil } from '../helpers/within.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

/** A promise and the function that settles it. */
function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void
  const promise = new Promise<T>((resolve) => {
    open = resolve
  })
  return { promise, open }
}

/**
 * The next `tryAcquire` of `locks` waits for `before` to open, then takes the
 * lock for real, says so, and holds it until `holding` opens: an instance
 * whose flight reaches the lock late, and is slow to look under it.
 */
function slowNextAcquire(locks: LockService, before: Promise<void>, holding: Promise<void>) {
  const original = locks.tryAcquire.bind(locks)
  const entered = gate()
  const acquired = gate<boolean>()
  locks.tryAcquire = async (key, ttlMs): Promise<HeldLock | null> => {
    locks.tryAcquire = original
    entered.open()
    await before
    const lock = await original(key, ttlMs)
    acquired.open(lock !== null)
    await holding
    return lock
  }
  return { entered: entered.promise, acquired: acquired.promise }
}

/** Resolves with the key of the next `waitForRelease` of `locks`, once it is waiting. */
function nextWait(locks: LockService): Promise<string> {
  const original = locks.waitForRelease.bind(locks)
  return new Promise((resolve) => {
    locks.waitForRelease = (key, timeoutMs) => {
      locks.waitForRelease = original
      const waiting = original(key, timeoutMs)
      resolve(key)
      return waiting
    }
  })
}

/**
 * `subscribed`: B gives the lock back once A listens for releases, so A
 * hears how; otherwise at once, while A's first wait subscribes, so A
 * finds the lock already free when it first looks.
 */
for (const subscribed of [true, false]) {
  t.test(
    `a route token waiting on the session lock of a replica that had nothing to refresh is refreshed after it, not answered 503 (released ${subscribed ? 'to a listening waiter' : 'while the waiter subscribes'})`,
    async (t) => {
      const clock = new TestClock()
      const stack = await startAudienceStack({
        replicas: 2,
        redisUrl: redis.url,
        keyPrefix: `${redis.prefix}idle-holder-${subscribed}:`,
        accessTokenTtl: 300,
        gateway: { now: clock.now },
      })
      t.teardown(() => stack.close())
      const probe = createRedisClient(redis.url)
      await whenReady(probe)
      t.teardown(() => probe.disconnect())
      const [a, b] = stack.urls as [string, string]
      const [appA, appB] = stack.apps
      t.equal((await apiCall(stack.jar, `${a}/orders/mint`)).status, 200, 'the orders token is minted')
      const minted = stack.upstreams.orders.requests.at(-1)!.authorization
      clock.advance(301_000)
      stack.idp.resetStats()

      // Replica B: a request read the session while the login token was due,
      // and its flight reaches the lock only once replica A has refreshed it.
      const before = gate()
      const holding = gate()
      const slow = slowNextAcquire(appB!.gatehouse.stores.locks, before.promise, holding.promise)
      const late = apiCall(stack.jar, `${b}/api/late`)
      await slow.entered
      t.equal((await apiCall(stack.jar, `${a}/api/now`)).status, 200, 'replica A refreshes the login token')
      t.equal(stack.idp.stats.refreshGrants, 1)
      before.open()
      t.ok(await slow.acquired, 'replica B holds the session lock, with nothing left to refresh')

      // Replica A: the orders token is due, and its flight waits on B's lock.
      const waiting = nextWait(appA!.gatehouse.stores.locks)
      const orders = apiCall(stack.jar, `${a}/orders/x`)
      t.match(await waiting, /^refresh:/, 'the orders request waits on the session lock')
      // Replica A subscribes to lock releases at its first wait.
      const channel = `${redis.prefix}idle-holder-${subscribed}:lock-released`
      if (subscribed) await pollUntil(async () => (await probe.pubsub('NUMSUB', channel))[1] === 1)
      holding.open()

      t.equal((await late).status, 200, "replica B's request uses the token A stored")
      const answer = await orders
      t.equal(answer.status, 200, `the orders request is served (${answer.text})`)
      t.equal(stack.idp.stats.refreshGrants, 2, 'the login token and the orders token, each refreshed once')
      t.equal(stack.idp.stats.refreshReplays, 0)
      t.equal(stack.idp.stats.revokedGrants, 0)
      const sent = stack.upstreams.orders.requests.at(-1)!.authorization!
      t.not(sent, minted, 'with a new orders token')
      t.equal((await stack.idp.introspect(sent.slice('Bearer '.length))).aud, ORDERS)
    },
  )
}
