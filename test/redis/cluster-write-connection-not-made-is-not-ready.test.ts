/**
 * A session store whose command connection answers while the connection
 * its writes go over (sign-ins, refreshes and sign-outs, each confirmed on
 * a replica: durability.ts) is not made said it was ready: `ping` asked
 * the command connection only, so `/readyz` answered 200 while every
 * sign-in answered 503.
 *
 * The two are separate connections, made apart. Right after a gateway
 * starts on a Redis Cluster, ioredis's own ready check of each goes to a
 * master at random, and one whose node connection is still being made
 * refuses it at once (the offline queue is off), which ioredis answers by
 * connecting again after a backoff: one of the two can take seconds longer
 * than the other, past the start's 2 s wait. The fresh-clone CI saw a
 * setup sign-in of cluster-that-cannot-serve-every-slot-is-not-ready
 * answer 503 so. Here each node refuses new connections (`maxclients`)
 * once the command connection is made, so the write connection is never
 * made until it is allowed again.
 */
import t from 'tap'
import { parseStore } from '../../src/config/store-url.js'
import type { RedisStoreConfig } from '../../src/config/types.js'
import { StoreUnavailableError } from '../../src/errors.js'
import { closeRedisClient, createRedisClient, whenReady } from '../../src/redis/connection.js'
import { ReplicaConfirmation } from '../../src/redis/durability.js'
import { RedisSessionStore } from '../../src/session/redis-store.js'
import { probeClient, startRedisCluster } from '../helpers/redis-topology.js'
import { pollUntil } from '../helpers/within.js'
import { ref, SECRETS, session } from '../session/fixtures.js'

t.test('a store whose write connection is not made is not ready, and is once it is', async (t) => {
  const cluster = await startRedisCluster()
  t.teardown(() => cluster.stop())
  const store = parseStore(cluster.url) as RedisStoreConfig
  const admins = cluster.nodes.map((n) => probeClient(n.port))
  t.teardown(() => {
    for (const admin of admins) admin.disconnect()
  })
  await Promise.all(admins.map((a) => a.connect()))
  const maxclients = String(((await admins[0]!.config('GET', 'maxclients')) as string[])[1])

  const client = createRedisClient(store)
  t.teardown(() => closeRedisClient(client))
  await whenReady(client, 5_000)
  t.equal(client.status, 'ready', 'the command connection is made')

  // Connections already made stay; every new one is refused.
  await Promise.all(admins.map((a) => a.config('SET', 'maxclients', '1')))
  const writer = createRedisClient(store)
  t.teardown(() => closeRedisClient(writer))
  const sessions = new RedisSessionStore({
    client,
    keyPrefix: 'wc:',
    secrets: SECRETS,
    idleTimeoutMs: 60_000,
    confirm: new ReplicaConfirmation({ client: writer }),
  })

  t.equal(await client.ping(), 'PONG', 'the command connection answers')
  await t.rejects(
    sessions.create(session('first', Date.now())),
    StoreUnavailableError,
    'a sign-in cannot write its session',
  )
  await t.rejects(sessions.ping(), StoreUnavailableError, 'so the store is not ready')

  await Promise.all(admins.map((a) => a.config('SET', 'maxclients', maxclients)))
  await pollUntil(
    () =>
      sessions.ping().then(
        () => true,
        () => false,
      ),
    10_000,
  )
  t.pass('ready once the write connection is made')
  const now = Date.now()
  await sessions.create(session('second', now))
  t.ok(await sessions.get(ref('second'), now), 'and a sign-in writes its session')
})
