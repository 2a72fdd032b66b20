import t from 'tap'
import { SingleFlight } from '../../src/tokens/single-flight.js'

t.test('concurrent callers share one call and its result', async (t) => {
  let joins = 0
  const flight = new SingleFlight<number>(() => joins++)
  let calls = 0
  let release!: (n: number) => void
  const fn = () => {
    calls++
    return new Promise<number>((resolve) => {
      release = resolve
    })
  }
  const all = Promise.all(Array.from({ length: 100 }, () => flight.run('k', fn)))
  release(7)
  t.same(await all, Array(100).fill(7))
  t.equal(calls, 1)
  t.equal(joins, 99)
  t.equal(flight.size, 0, 'the entry is gone once settled')
})

t.test('concurrent callers share the same error, and the next call starts afresh', async (t) => {
  const flight = new SingleFlight<number>()
  let calls = 0
  const failing = async () => {
    calls++
    throw new Error('idp down')
  }
  const results = await Promise.allSettled([flight.run('k', failing), flight.run('k', failing)])
  t.same(
    results.map((r) => r.status),
    ['rejected', 'rejected'],
  )
  t.equal(calls, 1)
  t.equal(await flight.run('k', async () => 1), 1)
})

t.test('keys do not share flights, and a synchronous throw becomes a rejection', async (t) => {
  const flight = new SingleFlight<string>()
  const [a, b] = await Promise.all([flight.run('a', async () => 'a'), flight.run('b', async () => 'b')])
  t.equal(a, 'a')
  t.equal(b, 'b')
  await t.rejects(
    flight.run('c', () => {
      throw new Error('sync')
    }),
    { message: 'sync' },
  )
})
