import { pbkdf2 } from 'node:crypto'
import t from 'tap'
import { generateDpopKey } from '../../src/dpop/keys.js'

/**
 * Every `/auth/login` makes a key pair, and anyone may call it. WebCrypto
 * makes one on libuv's thread pool, four threads by default, which also
 * serves dns.lookup (each upstream dial by host name), fs and the RSA
 * upstream proofs; an RSA pair (PS256, which FAPI 2.0 allows) is about
 * 50 ms of CPU. Forty anonymous sign-in starts with PS256 held a
 * dns.lookup for 5 s on the bench machine. Pairs are now made one at a
 * time, so the other threads stay free: a thread-pool task queued behind
 * eight pending RSA pairs is done before the first of them.
 */
t.test('a thread-pool task is not queued behind the key pairs of sign-in starts', async (t) => {
  const order: string[] = []
  const keys = Array.from({ length: 8 }, (_, i) =>
    generateDpopKey('PS256').then(() => {
      order.push(`key ${i}`)
    }),
  )
  const task = new Promise<void>((resolve, reject) =>
    pbkdf2('x', 'salt', 1, 32, 'sha256', (err) => {
      if (err) reject(err)
      order.push('thread-pool task')
      resolve()
    }),
  )
  await Promise.all([...keys, task])
  t.equal(order[0], 'thread-pool task', `done before any key pair: ${order.join(', ')}`)
  t.same(
    order.filter((o) => o.startsWith('key')),
    Array.from({ length: 8 }, (_, i) => `key ${i}`),
    'the pairs are made in the order asked',
  )
})

t.test('a pair that fails to be made does not stop the next', async (t) => {
  const failed = generateDpopKey('XX999' as 'ES256')
  const next = generateDpopKey('ES256')
  await t.rejects(failed)
  t.match(await next, { alg: 'ES256', jwk: { kty: 'EC' } })
})
