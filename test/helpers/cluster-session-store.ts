import type { Test } from 'tap'
import { parseStore } from '../../src/config/store-url.js'
import type { RedisStoreConfig } from '../../src/config/types.js'
import { closeRedisClient, createRedisClient, whenReady } from '../../src/redis/connection.js'
import { ReplicaConfirmation } from '../../src/redis/durability.js'
import { RedisSessionStore } from '../../src/session/redis-store.js'
import { SECRETS } from '../session/fixtures.js'
import { startRedisCluster, type TestRedisCluster } from './redis-topology.js'

/**
 * A Redis Cluster with a replica per master, and a session store on it
 * whose confirmed writes go on a connection of their own, as the gateway
 * has them: the writer learns where slots went from its own traffic only.
 */
export async function sessionStoreOnCluster(
  t: Test,
  options: { readonly keyPrefix: string; readonly confirmTimeoutMs: number },
): Promise<{ cluster: TestRedisCluster; sessions: RedisSessionStore }> {
  const cluster = await startRedisCluster({ replicas: 1 })
  t.teardown(() => cluster.stop())
  const store = parseStore(cluster.url) as RedisStoreConfig
  const client = createRedisClient(store)
  const writer = createRedisClient(store)
  await Promise.all([whenReady(client, 5_000), whenReady(writer, 5_000)])
  t.teardown(() => Promise.all([closeRedisClient(client), closeRedisClient(writer)]))
  const sessions = new RedisSessionStore({
    client,
    keyPrefix: options.keyPrefix,
    secrets: SECRETS,
    idleTimeoutMs: 60_000,
    confirm: new ReplicaConfirmation({ client: writer, timeoutMs: options.confirmTimeoutMs }),
  })
  return { cluster, sessions }
}
