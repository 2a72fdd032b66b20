import t from 'tap'
import { parseStore } from '../../src/config/store-url.js'
import type { RedisStoreConfig } from '../../src/config/types.js'
import { closeRedisClient, createRedisClient, whenReady } from '../../src/redis/connection.js'
import { RedisSessionStore } from '../../src/session/redis-store.js'
import { RedisLockService } from '../../src/tokens/redis-lock.js'
import { startRedisCluster } from '../helpers/redis-topology.js'
import { SECRETS, session } from './fixtures.js'
import { sessionStoreContract } from './store-contract.js'

const cluster = await startRedisCluster()
t.teardown(() => cluster.stop())
const store = parseStore(cluster.url) as RedisStoreConfig

async function open(prefix: string, idleTimeoutMs: number, now = Date.now) {
  const client = createRedisClient(store)
  await whenReady(client, 5_000)
  const sessions = new RedisSessionStore({ client, keyPrefix: prefix, secrets: SECRETS, idleTimeoutMs, now })
  return { client, store: sessions, close: () => closeRedisClient(client) }
}

let n = 0
// The same contract the standalone store meets: every script and command
// runs on a 3-master cluster, where one that spans two slots fails.
sessionStoreContract(t, 'redis cluster', (idleTimeoutMs, now) => open(`c${++n}:`, idleTimeoutMs, now))

t.test('a user with sessions on every master: indexes list them and logout finds them all', async (t) => {
  const { client, store: sessions, close } = await open('spread:', 60_000)
  t.teardown(close)
  const now = Date.now()
  const ids = Array.from({ length: 24 }, (_, i) => `s${i}`)
  for (const id of ids) await sessions.create(session(id, now, { sub: 'carol', sid: `idp-${id.length}` }))
  const owners = new Set(
    await Promise.all(ids.map((id) => client.cluster('KEYSLOT', `spread:s:{${id}}`).then(Number))),
  )
  t.ok(owners.size > 3, `sessions spread over ${owners.size} slots`)
  t.same((await sessions.idsBySub('carol')).sort(), [...ids].sort())
  for (const id of ids.slice(0, 12)) await sessions.delete(id)
  t.same((await sessions.idsBySub('carol')).sort(), ids.slice(12).sort(), 'deletes leave the index')
  // A crash between the session's removal and its index's: the member
  // stays in the index until the next listing prunes it.
  await client.del('spread:s:{s12}')
  t.same((await sessions.idsBySub('carol')).sort(), ids.slice(13).sort())
  t.equal(await client.zscore('spread:sub:{carol}', 's12'), null, 'and the stale member is gone')
})

t.test('the refresh lock works across instances on a cluster, woken by pub/sub', async (t) => {
  const a = createRedisClient(store)
  const b = createRedisClient(store)
  await Promise.all([whenReady(a, 5_000), whenReady(b, 5_000)])
  const locksA = new RedisLockService({ client: a, keyPrefix: 'lk:' })
  const locksB = new RedisLockService({ client: b, keyPrefix: 'lk:' })
  t.teardown(async () => {
    await Promise.all([locksA.close(), locksB.close()])
    await Promise.all([closeRedisClient(a), closeRedisClient(b)])
  })
  const held = await locksA.tryAcquire('refresh:x', 5_000)
  t.ok(held, 'the first takes it')
  t.equal(await locksB.tryAcquire('refresh:x', 5_000), null, 'the second does not')
  const woke = locksB.waitForRelease('refresh:x', 3_000)
  await held!.release()
  await woke
  t.ok(await locksB.tryAcquire('refresh:x', 5_000), 'free once released')
})
