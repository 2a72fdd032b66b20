import type { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { RefreshWaitTimeoutError, StoreUnavailableError } from '../../src/errors.js'
import { createRedisClient, whenReady } from '../../src/redis/connection.js'
import { type RedisLockOptions, RedisLockService } from '../../src/tokens/redis-lock.js'
import { existsAnswered, startRedis } from '../helpers/redis.js'
import { pollUntil } from '../helpers/within.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

/** One "replica": its own connection and its own lock service. */
async function replica(
  t: Test,
  options: Partial<RedisLockOptions> = {},
): Promise<{ client: Redis; locks: RedisLockService }> {
  const client = createRedisClient(redis.url)
  await whenReady(client)
  const locks = new RedisLockService({ client, keyPrefix: redis.prefix, ...options })
  t.teardown(async () => {
    await locks.close()
    client.disconnect()
  })
  return { client, locks }
}

t.test('across two replicas exactly one acquires, however many try at once', async (t) => {
  const a = await replica(t)
  const b = await replica(t)
  const attempts = await Promise.all(
    Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).locks.tryAcquire('race', 5_000)),
  )
  const winners = attempts.filter((lock) => lock !== null)
  t.equal(winners.length, 1)
  t.ok((await a.client.get(`${redis.prefix}lock:{race}`))?.length, 'the lock key holds an owner token')
  await winners[0]!.release()
  t.equal(await a.client.exists(`${redis.prefix}lock:{race}`), 0, 'released: the key is gone')
})

t.test('a waiter on the other replica wakes on the release message, not before', async (t) => {
  const a = await replica(t)
  // Polling slowed to a crawl: only the pub/sub message can wake the waiter in time.
  const b = await replica(t, { pollEveryMs: 60_000 })
  const held = (await a.locks.tryAcquire('wake', 5_000))!
  t.ok(held)
  t.equal(await b.locks.tryAcquire('wake', 5_000), null)

  const events: string[] = []
  const waiters = Promise.all(
    Array.from({ length: 20 }, () => b.locks.waitForRelease('wake', 5_000).then(() => events.push('woke'))),
  )
  // Let the waiters subscribe and make their first check before releasing.
  await pollUntil(async () => (await a.client.pubsub('NUMSUB', `${redis.prefix}lock-released`))[1] === 1)
  await b.client.ping()
  t.same(events, [], 'nobody woke while the lock was held')
  const released = Date.now()
  events.push('release')
  await held.release()
  await waiters
  t.equal(events[0], 'release', 'every waiter woke after release was called')
  t.equal(events.length, 21)
  t.ok(Date.now() - released < 1_000, `promptly (${Date.now() - released} ms)`)
  t.ok(await b.locks.tryAcquire('wake', 5_000), 'and the lock is free for the other replica')
})

t.test('waiters hear whether the holder gave the lock back idle or answered', async (t) => {
  const a = await replica(t)
  // Only the messages can wake these in time, and they say how.
  const b = await replica(t, { pollEveryMs: 60_000 })
  const channel = `${redis.prefix}lock-released`
  const heard = async (how: 'idle' | 'answered' | 'released') => {
    const held = (await a.locks.tryAcquire('how', 5_000))!
    const waiting = b.locks.waitForRelease('how', 5_000)
    await pollUntil(async () => (await a.client.pubsub('NUMSUB', channel))[1] === 1)
    await b.client.ping()
    await held.release(how)
    return waiting
  }
  t.equal(await heard('idle'), 'idle', 'an idle release is heard as one')
  t.equal(await heard('answered'), 'answered', 'an answered release is heard as one')
  t.equal(await heard('released'), 'released')

  // A waiter of an instance that predates idle releases hears the key alone.
  const messages: string[] = []
  const listener = a.client.duplicate({ enableOfflineQueue: true })
  t.teardown(() => listener.disconnect())
  listener.on('message', (_channel: string, message: string) => messages.push(message))
  await listener.subscribe(channel)
  await (await a.locks.tryAcquire('old', 5_000))!.release('idle')
  await (await a.locks.tryAcquire('old', 5_000))!.release('answered')
  await pollUntil(async () => messages.length === 4)
  t.same(
    messages,
    ['idle:old', 'old', 'answered:old', 'old'],
    'the key is published after the idle or answered message',
  )
})

t.test('an idle release is heard as idle by a waiter whose poll finds the lock gone first', async (t) => {
  const a = await replica(t)
  // Polling as often as it can: the poll's answer often comes before the
  // release's message, on the other connection.
  const b = await replica(t, { pollEveryMs: 1 })
  const heard: Record<string, number> = {}
  for (let i = 0; i < 200; i++) {
    const held = (await a.locks.tryAcquire(`poll-${i}`, 5_000))!
    // Past the waiter's first look, so the release is one it waits through.
    const firstLook = existsAnswered(b.client, `${redis.prefix}lock:{poll-${i}}`)
    const waiting = b.locks.waitForRelease(`poll-${i}`, 5_000)
    await firstLook
    await held.release('idle')
    const how = await waiting
    heard[how] = (heard[how] ?? 0) + 1
  }
  t.equal(heard.unheard, undefined, `none taken for unheard (${JSON.stringify(heard)})`)
  t.equal(heard.released, undefined, 'nor for failed')
  t.ok((heard.idle ?? 0) > 0, 'heard as idle')
})

t.test('a holder slower than the TTL keeps the lock by renewal', async (t) => {
  // Long enough that a renewal delayed by a loaded CI machine still lands in time.
  const TTL = 500
  const a = await replica(t)
  const b = await replica(t)
  const held = (await a.locks.tryAcquire('slow', TTL))!
  t.ok(held)
  const started = Date.now()
  let tries = 0
  while (Date.now() - started < 3.5 * TTL) {
    tries++
    const stolen = await b.locks.tryAcquire('slow', TTL)
    if (stolen) {
      await stolen.release()
      t.fail(`the other replica took the lock after ${Date.now() - started} ms`)
      break
    }
    // The pace of the thief's tries, not a wait for anything: the TTL it
    // tries to outlast is Redis's own, in real time.
    await new Promise((r) => setTimeout(r, 10))
  }
  t.ok(tries > 10, `kept trying (${tries} times) for 3.5 TTLs`)
  const pttl = await a.client.pttl(`${redis.prefix}lock:{slow}`)
  t.ok(pttl > 0 && pttl <= TTL, `still held with a live TTL (${pttl} ms)`)
  await held.release()
  t.ok(await b.locks.tryAcquire('slow', TTL), 'free once released')
})

t.test('a holder whose lock lapsed cannot release the next owner’s lock or wake its waiters', async (t) => {
  // No renewal within the test: the lock lapses after its TTL, as it would
  // if this holder stalled through a Redis outage.
  const a = await replica(t, { renewEveryMs: 60_000 })
  const b = await replica(t)
  const c = await replica(t, { pollEveryMs: 60_000 })
  const lapsed = (await a.locks.tryAcquire('lapse', 100))!
  t.ok(lapsed)
  await pollUntil(async () => (await a.client.exists(`${redis.prefix}lock:{lapse}`)) === 0, 5_000)
  const owner = (await b.locks.tryAcquire('lapse', 5_000))!
  t.ok(owner, 'the next owner takes it')
  const events: string[] = []
  const waiting = c.locks.waitForRelease('lapse', 5_000).then(() => events.push('woke'))
  await pollUntil(async () => (await a.client.pubsub('NUMSUB', `${redis.prefix}lock-released`))[1] === 1)

  await lapsed.release()
  t.equal(await a.client.exists(`${redis.prefix}lock:{lapse}`), 1, 'the new owner’s lock is still there')
  t.equal(await c.locks.tryAcquire('lapse', 5_000), null)
  await b.client.ping()
  events.push('owner-release')
  await owner.release()
  await waiting
  t.same(events, ['owner-release', 'woke'], 'the waiter woke on the real release only')
})

t.test('a holder that vanishes without releasing: waiters see the lock expire', async (t) => {
  const TTL = 500
  const a = await replica(t)
  const b = await replica(t, { pollEveryMs: 20 })
  // The waiter must look while the lock is still held, or it rightly takes
  // the lock for free. Subscribed beforehand, its first look goes out at
  // once; before, it waited for a new connection's SUBSCRIBE, and on a
  // loaded machine the 150 ms lock had lapsed by then ('free').
  t.equal(await b.locks.waitForRelease('never-taken', 5_000), 'free', 'the waiter is subscribed')
  t.ok(await a.locks.tryAcquire('vanish', TTL))
  // close() stops the renewal, as a crashed replica would.
  await a.locks.close()
  const started = Date.now()
  t.equal(
    await b.locks.waitForRelease('vanish', 5_000),
    'unheard',
    'a lapsed lock says nothing of its holder',
  )
  // Noticed by the 20 ms poll after the lapse and the grace for a release
  // message (redis-lock.ts), well before the wait's own 5 s timeout.
  const waited = Date.now() - started
  t.ok(waited < 2_500, `the safety-net poll noticed the expiry (${waited} ms)`)
})

t.test('waiting times out with RefreshWaitTimeoutError', async (t) => {
  const a = await replica(t)
  const b = await replica(t)
  const held = (await a.locks.tryAcquire('stuck', 5_000))!
  t.teardown(() => held.release())
  const started = Date.now()
  const err = await b.locks.waitForRelease('stuck', 200).catch((e: unknown) => e)
  t.type(err, RefreshWaitTimeoutError)
  t.match(err, { code: 'GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT', statusCode: 503, lock: 'stuck' })
  const waited = Date.now() - started
  t.ok(waited >= 190 && waited < 1_000, `after the timeout (${waited} ms)`)
})

t.test('waiting on a free key resolves at once', async (t) => {
  const a = await replica(t)
  t.equal(await a.locks.waitForRelease('never-taken', 5_000), 'free')
})

t.test('with Redis down, acquiring fails fast with StoreUnavailableError', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
  const a = await replica(t)
  await redis.kill()
  const started = Date.now()
  await t.rejects(a.locks.tryAcquire('down', 1_000), StoreUnavailableError)
  await t.rejects(a.locks.waitForRelease('down', 1_000), StoreUnavailableError)
  t.ok(Date.now() - started < 1_500, `fast (${Date.now() - started} ms)`)
  await redis.restart()
  await pollUntil(() =>
    a.client.ping().then(
      () => true,
      () => false,
    ),
  )
  const lock = await a.locks.tryAcquire('down', 1_000)
  t.ok(lock, 'works again once Redis is back')
  await lock!.release()
})
