import t, { type Test } from 'tap'
import { HeldKeys } from '../../src/dpop/held-keys.js'
import { KEY_IDLE_MS } from '../../src/dpop/key-cache.js'
import { generateDpopKey, publicKeyId } from '../../src/dpop/keys.js'
import { DpopNonces } from '../../src/dpop/nonces.js'
import { DpopProofs } from '../../src/dpop/proofs.js'
import { UpstreamProofs } from '../../src/dpop/upstream.js'
import { TestClock } from '../helpers/gateway.js'

const url = new URL('https://orders.example/v1/orders')

/** Both caches of a gateway's keys, kept by one `HeldKeys`, on a clock the test moves. */
function caches(t: Test) {
  const clock = new TestClock()
  const keys = new HeldKeys()
  t.teardown(() => keys.close())
  const dpop = new DpopProofs(new DpopNonces(), clock.now)
  const upstream = new UpstreamProofs(new DpopNonces(), clock.now)
  keys.keep(dpop)
  keys.keep(upstream)
  /** The key made ready as a session's is: its IdP handle and its upstream signer. */
  const use = async (key: Awaited<ReturnType<typeof generateDpopKey>>) => {
    await dpop.handle(key)
    await upstream.proof(key, 'GET', url, 'token')
  }
  return { clock, keys, dpop, upstream, use }
}

t.test("a session's end drops its key from every cache, found by the session id alone", async (t) => {
  const { keys, use } = caches(t)
  const mine = await generateDpopKey('ES256')
  const other = await generateDpopKey('ES256')
  await use(mine)
  await use(other)
  keys.seen('session-1', mine)
  keys.seen('session-2', other)
  t.ok(keys.holds(mine))

  keys.ended('session-1')
  t.notOk(keys.holds(mine), 'neither the handle nor the signer is left')
  t.ok(keys.holds(other), "another session's key stays")
  keys.ended('session-1')
  keys.ended('never-seen')
  t.ok(keys.holds(other), 'an end told twice, or of a session never read here, drops nothing else')

  keys.ended('session-without-a-read', other)
  t.notOk(keys.holds(other), 'with the record at hand, its key goes even if no read was seen')
})

t.test('a key unused for the bound is dropped at the next sweep; one used since stays', async (t) => {
  const { clock, keys, use, upstream } = caches(t)
  const idle = await generateDpopKey('ES256')
  const busy = await generateDpopKey('Ed25519')
  await use(idle)
  await use(busy)
  clock.advance(KEY_IDLE_MS - 1_000)
  upstream.proof(busy, 'GET', url, 'token')
  keys.dropIdle()
  t.ok(keys.holds(idle), 'not yet idle for the bound')
  clock.advance(1_000)
  keys.dropIdle()
  t.notOk(keys.holds(idle), 'idle for the bound: dropped, without sleeping')
  t.ok(keys.holds(busy), 'the key used since stays')
  t.type(upstream.proof(idle, 'GET', url, 'token'), 'string', 'a dropped key signs again, made ready anew')
})

t.test('a signer still being made when its session ends is not kept once made', async (t) => {
  const { keys, upstream } = caches(t)
  const rsa = await generateDpopKey('PS256')
  const proof = upstream.proof(rsa, 'GET', url, 'token')
  t.ok(proof instanceof Promise, 'an RSA signer is made in a promise')
  keys.ended('session-1', rsa)
  await proof
  t.notOk(keys.holds(rsa), 'the end is not undone by the import that finished after it')
})

t.test('a cache taken out is no longer reached by ends', async (t) => {
  const clock = new TestClock()
  const keys = new HeldKeys()
  t.teardown(() => keys.close())
  const dpop = new DpopProofs(new DpopNonces(), clock.now)
  const unkeep = keys.keep(dpop)
  const key = await generateDpopKey('ES256')
  await dpop.handle(key)
  t.ok(keys.holds(key))
  unkeep()
  t.notOk(keys.holds(key), 'its keys are no longer counted')
  keys.ended('session', key)
  t.ok(dpop.holds(publicKeyId(key)), "nor dropped: the cache is its owner's")
})
