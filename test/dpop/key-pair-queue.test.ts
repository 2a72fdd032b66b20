import t from 'tap'
import { KeyPairQueue } from '../../src/dpop/keys.js'
import { isGatehouseError, retryAfterFor } from '../../src/errors.js'

/**
 * Key pairs are made one at a time per process (sign-in-starts-cannot-fill-
 * the-thread-pool.test.ts), and anyone may start a sign-in: the queue was
 * unbounded, each start holding its request and its place for as long as
 * the pairs before it took. Past the bound a sign-in's pair is refused at
 * once with a 503 to retry; the gateway's own client-credentials pair waits.
 */
t.test('past the bound a sign-in is refused at once, and the pairs queued are still made', async (t) => {
  const queue = new KeyPairQueue({ max: 3 })
  const asked = Array.from({ length: 5 }, () => queue.make('ES256', 'sign-in'))
  const settled = await Promise.allSettled(asked)
  t.same(
    settled.map((s) => s.status),
    ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected'],
    'three made, two refused',
  )
  for (const s of settled.slice(0, 3))
    t.match(s.status === 'fulfilled' && s.value, { alg: 'ES256', jwk: { kty: 'EC', d: String } })
  for (const s of settled.slice(3)) {
    const err = s.status === 'rejected' ? s.reason : undefined
    t.ok(isGatehouseError(err), 'a catalogue error')
    t.match(err, { code: 'GATEHOUSE_ERR_DPOP_KEYS_BUSY', statusCode: 503 })
    t.ok(isGatehouseError(err) && (retryAfterFor(err) ?? 0) >= 1, 'with Retry-After')
  }
  t.equal(queue.size, 0, 'nothing left waiting')
  t.match(await queue.make('ES256', 'sign-in'), { alg: 'ES256' }, 'a place frees once a pair is made')
})

t.test("the gateway's own client-credentials pair waits past the bound, and counts", async (t) => {
  const queue = new KeyPairQueue({ max: 1 })
  const first = queue.make('ES256', 'sign-in')
  const client = queue.make('ES256', 'client')
  t.equal(queue.size, 2)
  await t.rejects(queue.make('ES256', 'sign-in'), { code: 'GATEHOUSE_ERR_DPOP_KEYS_BUSY' })
  t.match(await Promise.all([first, client]), [{ alg: 'ES256' }, { alg: 'ES256' }])
})

t.test('a failed pair gives its place back', async (t) => {
  const queue = new KeyPairQueue({ max: 1 })
  await t.rejects(queue.make('XX999' as 'ES256', 'sign-in'))
  t.equal(queue.size, 0)
  t.match(await queue.make('ES256', 'sign-in'), { alg: 'ES256' })
})

t.test('the bound is a whole number of at least 1', async (t) => {
  for (const max of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
    t.throws(() => new KeyPairQueue({ max }), RangeError, String(max))
})
