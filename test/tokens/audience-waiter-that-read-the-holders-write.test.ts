/**
 * A request that read the session after another replica's flight stored
 * its tokens, but before that flight gave the lock back, waits on the lock
 * with the stored version already in hand. When the holder releases, the
 * version is unchanged, so the waiter took the release for a failure and
 * answered 503 token_refresh_unavailable with the IdP up (seen once in the
 * exchange storm, test/tokens/exchange-two-providers-storm.test.ts). The
 * holder now says that it stored tokens, and the waiter goes round.
 */
import t from 'tap'
import { createRedisClient, whenReady } from '../../src/redis/connection.js'
import type { HeldLock, LockService } from '../../src/tokens/types.js'
import { LEDGER, ORDERS, startAudienceStack } from '../helpers/audience-stack.js'
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
 * The next lock `locks` grants is given back only once `holding` opens;
 * `releasing` settles when its holder asks to give it back, its flight
 * done and its tokens stored.
 */
function slowNextRelease(locks: LockService, holding: Promise<void>): Promise<void> {
  const original = locks.tryAcquire.bind(locks)
  const releasing = gate()
  locks.tryAcquire = async (key, ttlMs): Promise<HeldLock | null> => {
    const lock = await original(key, ttlMs)
    if (lock === null) return lock
    locks.tryAcquire = original
    return {
      release: async (how) => {
        releasing.open()
        await holding
        await lock.release(how)
      },
    }
  }
  return releasing.promise
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

for (const [path, audience] of [
  ['/orders/x', ORDERS],
  ['/ledger/x', LEDGER],
] as const) {
  t.test(
    `a ${path.split('/')[1]} request that read the login token another replica stored, and waits on its lock, is served after the release, not answered 503`,
    async (t) => {
      const clock = new TestClock()
      const prefix = `${redis.prefix}read-holders-write-${path.split('/')[1]}:`
      const stack = await startAudienceStack({
        replicas: 2,
        redisUrl: redis.url,
        keyPrefix: prefix,
        accessTokenTtl: 300,
        exchange: {},
        gateway: { now: clock.now },
      })
      t.teardown(() => stack.close())
      const probe = createRedisClient(redis.url)
      await whenReady(probe)
      t.teardown(() => probe.disconnect())
      const [a, b] = stack.urls as [string, string]
      const [appA, appB] = stack.apps
      // The login token is due; the route's token was never obtained, so no
      // held one covers a failure.
      clock.advance(301_000)
      stack.idp.resetStats()

      // Replica B refreshes the login token and stores it, then is slow to give the lock back.
      const holding = gate()
      const releasing = slowNextRelease(appB!.gatehouse.stores.locks, holding.promise)
      const first = apiCall(stack.jar, `${b}/api/b`)
      await releasing
      t.equal(stack.idp.stats.refreshGrants, 1, 'replica B refreshed the login token and stored it')

      // Replica A reads the session B stored; its route's token is due, and it waits on B's lock.
      const waiting = nextWait(appA!.gatehouse.stores.locks)
      const second = apiCall(stack.jar, `${a}${path}`)
      t.match(await waiting, /^refresh:/, 'the route request waits on the session lock')
      // Subscribed, so the waiter hears how the lock was given back.
      await pollUntil(async () => (await probe.pubsub('NUMSUB', `${prefix}lock-released`))[1] === 1)
      holding.open()

      t.equal((await first).status, 200, "replica B's request is served")
      const answer = await second
      t.equal(
        answer.status,
        200,
        `the route request is served${answer.status === 200 ? '' : ` (${answer.text})`}`,
      )
      // The login token once; then the orders token, or an exchange from the stored login token.
      t.equal(stack.idp.stats.refreshGrants, path.startsWith('/orders') ? 2 : 1, 'each token asked for once')
      t.equal(stack.idp.stats.refreshReplays, 0)
      t.equal(stack.idp.stats.revokedGrants, 0)
      const upstream = path.startsWith('/orders') ? stack.upstreams.orders : stack.upstreams.ledger!
      const sent = upstream.requests.at(-1)?.authorization ?? ''
      t.equal((await stack.idp.introspect(sent.slice('Bearer '.length))).aud, audience, 'with its own token')
    },
  )
}
