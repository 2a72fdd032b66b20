import t from 'tap'
import { MemorySessionStore } from '../../src/session/memory-store.js'
import type { SessionData } from '../../src/session/types.js'
import { ref, session } from './fixtures.js'
import { sessionStoreContract } from './store-contract.js'

sessionStoreContract(t, 'memory', async (idleTimeoutMs, now) => {
  const store = new MemorySessionStore({ idleTimeoutMs, clock: now })
  return { store, close: () => store.close() }
})

const base = Date.now()
// A user and an IdP session of its own per id, so each index holds one entry.
const make = (id: string, extra: Partial<SessionData> = {}): SessionData =>
  session(id, base, {
    sub: `u-${id}`,
    sid: `s-${id}`,
    claims: {},
    tokens: { accessToken: `A-${id}`, accessTokenExpiresAt: base + 1, refreshToken: `R-${id}` },
    absoluteExpiresAt: base + 600_000,
    ...extra,
  })

t.test('memory: bounded, evicting the least recently used, indexes included', async (t) => {
  const store = new MemorySessionStore({ idleTimeoutMs: 60_000, maxSessions: 3, clock: () => base })
  for (const id of ['a', 'b', 'c']) await store.create(make(id))
  await store.get(ref('a'), base)
  await store.create(make('d'))
  t.equal(store.size, 3)
  t.equal(await store.get(ref('b'), base), undefined, 'b was least recently used')
  t.ok(await store.get(ref('a'), base))
  t.same(await store.idsBySub('u-b'), [], 'its sub index entry went with it')
  t.same(await store.idsBySid('s-b'), [], 'and its sid index entry')
})

t.test('memory: records are replaced, never mutated, so old snapshots stay as they were', async (t) => {
  let now = base
  const store = new MemorySessionStore({ idleTimeoutMs: 60_000, clock: () => now })
  const created = make('a')
  await store.create(created)
  const snapshot = (await store.get(ref('a'), now))!
  const next = { accessToken: 'A2', accessTokenExpiresAt: base + 2, refreshToken: 'R2' }
  t.equal(await store.updateTokens(ref('a'), 0, next), 'updated')
  now += 30_000
  const touched = (await store.get(ref('a'), now))!
  t.equal(touched.idleExpiresAt, now + 60_000)
  t.same(touched.tokens, next, 'the touch kept the newer tokens')
  t.equal(snapshot.tokens.refreshToken, 'R-a', 'the snapshot was not changed under its holder')
  t.equal(snapshot.version, 0)
  t.equal(snapshot.idleExpiresAt, base + 60_000)
  t.same(created, make('a'), 'nor was the object passed to create')
  t.equal(await store.updateTokens(ref('a'), snapshot.version, snapshot.tokens), 'stale')
})

t.test('memory: the touch is throttled to touchEveryMs and capped at the absolute expiry', async (t) => {
  const store = new MemorySessionStore({ idleTimeoutMs: 60_000, touchEveryMs: 5_000, clock: () => base })
  await store.create(make('a', { absoluteExpiresAt: base + 80_000 }))
  t.equal((await store.get(ref('a'), base + 4_999))!.idleExpiresAt, base + 60_000, 'too soon: unchanged')
  t.equal((await store.get(ref('a'), base + 5_000))!.idleExpiresAt, base + 65_000)
  t.equal((await store.get(ref('a'), base + 6_000))!.idleExpiresAt, base + 65_000)
  t.equal((await store.get(ref('a'), base + 50_000))!.idleExpiresAt, base + 80_000, 'never past absolute')
  t.equal(await store.get(ref('a'), base + 80_000), undefined)
  t.equal(store.size, 0, 'expired on read, indexes with it')
  t.same(await store.idsBySub('u-a'), [])
})

t.test('memory: the default touch interval is a tenth of the idle timeout', async (t) => {
  const store = new MemorySessionStore({ idleTimeoutMs: 60_000, clock: () => base })
  await store.create(make('a'))
  t.equal((await store.get(ref('a'), base + 5_999))!.idleExpiresAt, base + 60_000)
  t.equal((await store.get(ref('a'), base + 6_000))!.idleExpiresAt, base + 66_000)
})

t.test('memory: expired members are filtered and dropped from the indexes', async (t) => {
  let now = base
  const store = new MemorySessionStore({ idleTimeoutMs: 60_000, clock: () => now })
  await store.create(make('a', { sub: 'u', sid: 's' }))
  await store.create(make('b', { sub: 'u', sid: 's', idleExpiresAt: base + 1_000 }))
  t.same((await store.idsBySid('s')).sort(), ['a', 'b'])
  now += 1_000
  t.same(await store.idsBySub('u'), ['a'])
  t.same(await store.idsBySid('s'), ['a'])
  t.equal(store.size, 1, 'the expired session was removed while listing')
})

t.test('memory: re-creating an id replaces it and its index entries', async (t) => {
  const store = new MemorySessionStore({ idleTimeoutMs: 60_000, clock: () => base })
  await store.create(make('a', { sub: 'old', sid: 'old-sid' }))
  await store.create(make('a', { sub: 'new', sid: undefined }))
  t.same(await store.idsBySub('old'), [])
  t.same(await store.idsBySid('old-sid'), [])
  t.same(await store.idsBySub('new'), ['a'])
  t.equal(store.size, 1)
})

t.test('memory: ping answers, close empties', async (t) => {
  const store = new MemorySessionStore({ idleTimeoutMs: 60_000 })
  await store.ping()
  await store.create(make('a'))
  await store.close()
  t.equal(store.size, 0)
  t.equal(store.kind, 'memory')
})

t.test(
  'memory: expired sessions never read again are reclaimed by later creates, with no timer',
  async (t) => {
    let now = base
    const store = new MemorySessionStore({ idleTimeoutMs: 60_000, clock: () => now })
    for (const id of ['a', 'b', 'c']) await store.create(make(id, { idleExpiresAt: base + 1_000 }))
    now = base + 1_000
    await store.create(make('d'))
    t.equal(store.size, 1, 'the expired head went on create, before anything read it')
    t.ok(await store.get(ref('d'), now))
    now = base
    t.equal(await store.get(ref('a'), now), undefined, 'gone, not merely hidden by the clock')
    t.same(await store.idsBySub('u-b'), [], 'its sub index entry went with it')
    t.same(await store.idsBySid('s-c'), [], 'and its sid index entry')
  },
)

t.test('memory: one create reclaims only a few records, so it never stalls on a sweep', async (t) => {
  let now = base
  const store = new MemorySessionStore({ idleTimeoutMs: 60_000, clock: () => now })
  for (let i = 0; i < 100; i++) await store.create(make(`x${i}`, { idleExpiresAt: base + 1_000 }))
  now = base + 1_000
  await store.create(make('live'))
  t.ok(store.size < 101, 'some were reclaimed')
  t.ok(store.size > 90, 'but not all at once')
  for (let i = 0; i < 100 && store.size > 1; i++) await store.create(make('live'))
  t.equal(store.size, 1, 'repeated creates drain the backlog')
})

t.test('memory: a live record at the head stops the reclaim and is kept under the cap', async (t) => {
  let now = base
  const store = new MemorySessionStore({ idleTimeoutMs: 60_000, maxSessions: 10, clock: () => now })
  await store.create(make('x', { idleExpiresAt: base + 1_000 }))
  await store.create(make('a'))
  await store.create(make('b', { idleExpiresAt: base + 1_000 }))
  now = base + 1_000
  await store.create(make('d'))
  t.equal(store.size, 3, 'x went; the reclaim stopped at a, so b is still held')
  t.ok(await store.get(ref('a'), now), 'the live head was not evicted')
  t.equal(await store.get(ref('b'), now), undefined, 'b still expires when read')
})

t.test('memory: the store never holds more than maxSessions', async (t) => {
  let now = base
  const store = new MemorySessionStore({ idleTimeoutMs: 60_000, maxSessions: 4, clock: () => now })
  for (let i = 0; i < 12; i++) {
    now = base + i * 10_000
    await store.create(make(`s${i}`, { idleExpiresAt: now + 60_000 }))
    t.ok(store.size <= 4, `size ${store.size} after create ${i + 1}`)
  }
  for (const id of ['s8', 's9', 's10', 's11'])
    t.ok(await store.get(ref(id), now), `${id}, among the newest, is held`)
  t.equal(await store.get(ref('s7'), now), undefined)
})

t.test('memory: peek is get without the promise, touch and refusals included', async (t) => {
  const a = new MemorySessionStore({ idleTimeoutMs: 60_000, touchEveryMs: 1_000 })
  const b = new MemorySessionStore({ idleTimeoutMs: 60_000, touchEveryMs: 1_000 })
  for (const store of [a, b]) await store.create(session('m1', base))
  const later = base + 5_000
  const peeked = a.peek(ref('m1'), later)
  t.same(peeked, await b.get(ref('m1'), later), 'the same answer as get')
  t.equal(peeked?.idleExpiresAt, later + 60_000, 'the idle expiry slid, as get slides it')
  t.equal(a.peek(ref('nobody'), later), undefined, 'no record: no session')
  t.throws(() => a.peek({ id: 'm1', key: ref('other').key }, later), {
    code: 'GATEHOUSE_ERR_SESSION_UNREADABLE',
  })
  t.equal(a.peek(ref('m1'), later + 60_000), undefined, 'idle-expired: no session')
})

t.test('memory: onChange hears each session removed, by delete, expiry or eviction', async (t) => {
  let now = base
  const store = new MemorySessionStore({ idleTimeoutMs: 60_000, maxSessions: 2, clock: () => now })
  const heard: string[] = []
  const stop = store.onChange((id) => heard.push(id))
  // A listener that throws is its own fault: the delete and the other listeners go on.
  const stopThrowing = store.onChange(() => {
    throw new Error('listener broke')
  })
  for (const id of ['a', 'b']) await store.create(make(id))
  t.equal(await store.delete('a'), true)
  t.equal(await store.delete('a'), false, 'a second delete removes nothing')
  await store.create(make('c'))
  await store.create(make('d'))
  t.same(heard, ['a', 'b'], 'the delete, then the eviction of the least recently used')
  now = base + 60_001
  t.equal(await store.get(ref('c'), now), undefined)
  t.same(heard, ['a', 'b', 'c'], 'an expiry found on a read')
  stop()
  stopThrowing()
  await store.delete('d')
  t.same(heard, ['a', 'b', 'c'], 'nothing after stop')
})
