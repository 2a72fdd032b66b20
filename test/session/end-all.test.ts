import t from 'tap'
import { MemorySessionStore } from '../../src/session/memory-store.js'
import { Sessions } from '../../src/session/sessions.js'
import { session } from './fixtures.js'

/**
 * A logout token for a user's `sub`, or "log out everywhere", ends every
 * session of that user. One after another, ten thousand sessions waited
 * six seconds of store round trips; all at once, they would queue every
 * delete on the store's one connection. A bounded number are in flight.
 */
t.test('endAll ends every session, a bounded number at once', async (t) => {
  const now = 1_000_000
  const store = new MemorySessionStore({ idleTimeoutMs: 60_000, clock: () => now })
  const ids = Array.from({ length: 100 }, (_, i) => `s${i}`)
  for (const id of ids) await store.create(session(id, now))
  let inFlight = 0
  let most = 0
  const remove = store.delete.bind(store)
  store.delete = async (id: string) => {
    most = Math.max(most, ++inFlight)
    // Another turn of the event loop, as a store's round trip takes.
    await new Promise((resolve) => setImmediate(resolve))
    const removed = await remove(id)
    inFlight--
    return removed
  }
  const sessions = new Sessions(store, { idleTimeout: 60_000, absoluteTimeout: 3_600_000 }, () => now)
  await sessions.endAll(ids)
  t.same(await store.idsBySub('alice', 'default', () => true), [], 'every session ended')
  t.ok(most > 1, `ended side by side (${most} at once)`)
  t.ok(most <= 32, `a bounded number at once (${most})`)
})
