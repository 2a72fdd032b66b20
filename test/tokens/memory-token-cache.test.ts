import t from 'tap'
import { MemoryTokenCache } from '../../src/tokens/memory-token-cache.js'

t.test('a token is served for its time to live, then not at all', async (t) => {
  let now = 1_000_000
  const cache = new MemoryTokenCache(() => now)
  const token = { accessToken: 'cc-1', expiresAt: now + 60_000 }
  await cache.set('reports.read', token, 30_000)
  t.equal(await cache.get('reports.read'), token, 'the same object, not a copy')
  t.equal(await cache.get('orders.read'), undefined, 'another key has none')
  now += 29_999
  t.equal(await cache.get('reports.read'), token)
  now += 1
  t.equal(await cache.get('reports.read'), undefined, 'gone with its time to live')
})

t.test('the bound evicts the least recently stored key', async (t) => {
  const now = 1_000_000
  const cache = new MemoryTokenCache(() => now, 2)
  const token = (n: number) => ({ accessToken: `cc-${n}`, expiresAt: now + 60_000 })
  await cache.set('a', token(1), 60_000)
  await cache.set('b', token(2), 60_000)
  await cache.set('c', token(3), 60_000)
  t.equal(await cache.get('a'), undefined)
  t.match(await cache.get('b'), { accessToken: 'cc-2' })
  t.match(await cache.get('c'), { accessToken: 'cc-3' })
  await cache.close()
  t.equal(await cache.get('c'), undefined, 'closed, it holds nothing')
})
