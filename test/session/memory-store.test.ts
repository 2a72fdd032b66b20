import t from 'tap'
import { MemorySessionStore } from '../../src/session/memory-store.js'
import { sessionStoreContract } from './store-contract.js'

sessionStoreContract(t, 'memory', async (idleTimeoutMs, now) => {
  const store = new MemorySessionStore({ idleTimeoutMs, clock: now })
  return { store, close: () => store.close() }
})

t.test('memory: bounded, evicting the least recently used', async (t) => {
  const now = Date.now()
  const store = new MemorySessionStore({ idleTimeoutMs: 60_000, maxSessions: 3, clock: () => now })
  const make = (id: string) => ({
    id,
    sub: `u-${id}`,
    claims: {},
    tokens: { accessToken: 'a', accessTokenExpiresAt: now + 1 },
    version: 0,
    createdAt: now,
    absoluteExpiresAt: now + 60_000,
    idleExpiresAt: now + 60_000,
    logoutHandle: 'h',
  })
  for (const id of ['a', 'b', 'c']) await store.create(make(id))
  await store.get('a', now)
  await store.create(make('d'))
  t.equal(store.size, 3)
  t.equal(await store.get('b', now), undefined, 'b was least recently used')
  t.ok(await store.get('a', now))
  t.same(await store.idsBySub('u-b'), [], 'its index entry went with it')
})
