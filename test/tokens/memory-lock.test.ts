import t from 'tap'
import { RefreshWaitTimeoutError } from '../../src/errors.js'
import { MemoryLockService } from '../../src/tokens/memory-lock.js'

t.test('only one holder at a time; a release wakes the waiters', async (t) => {
  const locks = new MemoryLockService()
  t.teardown(() => locks.close())
  const held = await locks.tryAcquire('k', 1_000)
  t.ok(held)
  t.equal(await locks.tryAcquire('k', 1_000), null, 'taken')
  t.ok(await locks.tryAcquire('other', 1_000), 'keys are independent')

  const order: string[] = []
  const waiters = Promise.all(
    Array.from({ length: 50 }, () => locks.waitForRelease('k', 5_000).then(() => order.push('woke'))),
  )
  await Promise.resolve()
  order.push('release')
  await held!.release()
  await waiters
  t.equal(order[0], 'release', 'no waiter woke before the release')
  t.equal(order.length, 51)
  t.ok(await locks.tryAcquire('k', 1_000), 'free again')
})

t.test('waiting on a free key resolves at once', async (t) => {
  const locks = new MemoryLockService()
  t.equal(await locks.waitForRelease('free', 10), 'free')
})

t.test('waiters hear whether the holder gave the lock back idle or answered', async (t) => {
  const locks = new MemoryLockService()
  t.teardown(() => locks.close())
  for (const how of ['idle', 'answered', 'released'] as const) {
    const held = (await locks.tryAcquire('k', 1_000))!
    const waiting = locks.waitForRelease('k', 5_000)
    await held.release(how)
    t.equal(await waiting, how)
  }
  const held = (await locks.tryAcquire('k', 1_000))!
  const waiting = locks.waitForRelease('k', 5_000)
  await held.release()
  t.equal(await waiting, 'released', 'released unless the holder says idle or answered')
})

t.test('a stale handle cannot release the next holder', async (t) => {
  const locks = new MemoryLockService()
  t.teardown(() => locks.close())
  const first = (await locks.tryAcquire('k', 1_000))!
  await first.release()
  const second = (await locks.tryAcquire('k', 1_000))!
  await first.release()
  t.equal(await locks.tryAcquire('k', 1_000), null, 'still held by the second')
  await second.release()
})

t.test('waiting times out with GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT', async (t) => {
  const locks = new MemoryLockService()
  t.teardown(() => locks.close())
  await locks.tryAcquire('k', 1_000)
  const started = Date.now()
  const err = await locks.waitForRelease('k', 50).catch((e: unknown) => e)
  t.type(err, RefreshWaitTimeoutError)
  t.match(err, { code: 'GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT', statusCode: 503 })
  t.ok(Date.now() - started >= 45)
})

t.test('close releases everything and wakes waiters', async (t) => {
  const locks = new MemoryLockService()
  await locks.tryAcquire('k', 1_000)
  const waiting = locks.waitForRelease('k', 5_000)
  await locks.close()
  await waiting
  t.ok(await locks.tryAcquire('k', 1_000))
  await locks.close()
})
