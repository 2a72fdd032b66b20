import type { Cluster } from 'ioredis'
import t from 'tap'
import { parseStore } from '../../src/config/store-url.js'
import type { RedisStoreConfig } from '../../src/config/types.js'
import { ClusterCoverage } from '../../src/redis/cluster-coverage.js'
import { closeRedisClient, createRedisClient, whenReady } from '../../src/redis/connection.js'
import { probeClient, startRedisCluster } from '../helpers/redis-topology.js'

/** `connected_clients` of one node, the asking connection included. */
async function connectedClients(port: number): Promise<number> {
  const probe = probeClient(port)
  try {
    await probe.connect()
    return Number(/^connected_clients:(\d+)/m.exec(await probe.info('clients'))?.[1])
  } finally {
    probe.disconnect()
  }
}

t.test('a check still out when the store closes leaves no connection open after it', async (t) => {
  const cluster = await startRedisCluster()
  t.teardown(() => cluster.stop())
  const client = createRedisClient(parseStore(cluster.url) as RedisStoreConfig) as Cluster
  t.teardown(() => closeRedisClient(client))
  await whenReady(client, 5_000)
  const coverage = new ClusterCoverage(client)
  t.equal(await coverage.check(), undefined, 'every slot served')
  coverage.close()
  const before = await Promise.all(cluster.nodes.map((n) => connectedClients(n.port)))

  // Closed while it waits for the slot map: the gateway shutting down, or
  // a reload, under a /readyz. An open socket would hold the process.
  const out = new ClusterCoverage(client)
  const checking = out.check()
  out.close()
  await checking.catch(() => {})
  const after = await Promise.all(cluster.nodes.map((n) => connectedClients(n.port)))
  t.same(after, before, 'no node has a connection more than before the check')
})
