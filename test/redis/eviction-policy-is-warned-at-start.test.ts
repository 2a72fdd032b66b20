/**
 * A Redis that may evict keys under memory pressure (a maxmemory and a
 * maxmemory-policy other than noeviction, as managed services default to)
 * can drop a refresh lock, a session or a rotated refresh token before its
 * TTL, and nothing fails: the gateway says so at start, one warn line per
 * finding, read with INFO memory on each primary. No limit, or noeviction,
 * says nothing above debug. None of it holds up readiness.
 */
import t, { type Test } from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { awaitedLog, type Line } from '../helpers/awaited-log.js'
import { startRedis } from '../helpers/redis.js'
import { probeClient, startRedisCluster, startRedisSentinel } from '../helpers/redis-topology.js'

const MIB_64 = 64 * 1024 * 1024

const evictionWarning = (l: Line) => l.code === 'GATEHOUSE_STORE_EVICTION'
const unchecked = (l: Line) => l.code === 'GATEHOUSE_STORE_EVICTION_UNCHECKED'
const noEviction = (l: Line) => typeof l.msg === 'string' && l.msg.startsWith('Redis evicts no keys')

/**
 * A gateway on `store`, logging at debug level; its log lines, awaitable.
 * Its IdP is unreachable, so `/readyz` is 503 whatever the store: its
 * `checks.store` is what says the store does not hold readiness up.
 */
async function gatewayOn(t: Test, store: string, keyPrefix = 'gh-eviction:') {
  const log = awaitedLog()
  const app = await buildTestApp(t, { store, keyPrefix, logLevel: 'debug' }, { logStream: log.logStream })
  return { app, log }
}

/** Sets `maxmemory` and `maxmemory-policy` on the node at `port`, as an operator's CONFIG SET would. */
async function configure(port: number, maxmemory: string, policy: string): Promise<void> {
  const probe = probeClient(port)
  try {
    await probe.connect()
    await probe.config('SET', 'maxmemory', maxmemory, 'maxmemory-policy', policy)
  } finally {
    probe.disconnect()
  }
}

t.test(
  'maxmemory 64mb with allkeys-lru: one warn line naming the policy, the cost and the fix',
  async (t) => {
    const redis = await startRedis({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'] })
    t.teardown(() => redis.stop())
    const { app, log } = await gatewayOn(t, redis.url)
    const line = await log.logged(evictionWarning)
    t.match(line, {
      level: 40,
      store: `redis://127.0.0.1:${redis.port}/0`,
      nodes: [{ node: `127.0.0.1:${redis.port}`, maxmemory: MIB_64, policy: 'allkeys-lru' }],
      msg: /maxmemory-policy allkeys-lru.*second instance redeem the same refresh token.*set maxmemory-policy noeviction/,
    })
    t.match(
      (await app.inject({ url: '/readyz' })).json(),
      { checks: { store: 'ok' } },
      'the store counts as ready',
    )
    t.equal(log.lines.filter(evictionWarning).length, 1, 'one line')
  },
)

t.test('maxmemory 64mb with noeviction: nothing above debug', async (t) => {
  const redis = await startRedis({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'] })
  t.teardown(() => redis.stop())
  const { log } = await gatewayOn(t, redis.url)
  t.match(await log.logged(noEviction), {
    level: 20,
    primaries: [{ maxmemory: MIB_64, policy: 'noeviction' }],
  })
  t.same(
    log.lines.filter((l) => evictionWarning(l) || unchecked(l)),
    [],
  )
})

t.test('maxmemory 0 (no limit) with allkeys-lru: nothing above debug, Redis never evicts', async (t) => {
  const redis = await startRedis({ args: ['--maxmemory', '0', '--maxmemory-policy', 'allkeys-lru'] })
  t.teardown(() => redis.stop())
  const { log } = await gatewayOn(t, redis.url)
  t.match(await log.logged(noEviction), { primaries: [{ maxmemory: 0, policy: 'allkeys-lru' }] })
  t.same(
    log.lines.filter((l) => evictionWarning(l) || unchecked(l)),
    [],
  )
})

t.test('a user whose ACL refuses INFO: says the policy could not be read, and serves', async (t) => {
  const redis = await startRedis({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'volatile-lru'] })
  t.teardown(() => redis.stop())
  const probe = probeClient(redis.port)
  await probe.connect()
  await probe.call('ACL', 'SETUSER', 'gatehouse', 'on', '>a-password', '~*', '&*', '+@all', '-info')
  probe.disconnect()
  const { app, log } = await gatewayOn(t, `redis://gatehouse:a-password@127.0.0.1:${redis.port}/0`)
  t.match(await log.logged(unchecked), {
    level: 30,
    node: `127.0.0.1:${redis.port}`,
    reason: /NOPERM/,
    msg: /^could not read Redis's maxmemory-policy \(.*NOPERM.*\); make sure it is noeviction/,
  })
  t.notMatch(JSON.stringify(log.lines), /a-password/, 'the password is never logged')
  t.match(
    (await app.inject({ url: '/readyz' })).json(),
    { checks: { store: 'ok' } },
    'the store counts as ready',
  )
  t.same(log.lines.filter(evictionWarning), [])
})

t.test('through Sentinel: the primary it names is the one read', async (t) => {
  const sentinel = await startRedisSentinel()
  t.teardown(() => sentinel.stop())
  await configure(sentinel.primary.port, '64mb', 'volatile-lru')
  const { log } = await gatewayOn(t, sentinel.url)
  t.match(await log.logged(evictionWarning), {
    nodes: [{ node: `127.0.0.1:${sentinel.primary.port}`, maxmemory: MIB_64, policy: 'volatile-lru' }],
  })
})

t.test('on a Cluster: every master is read, and one that evicts is named', async (t) => {
  const cluster = await startRedisCluster()
  t.teardown(() => cluster.stop())
  const [evicts, ...others] = cluster.nodes
  await configure(evicts!.port, '64mb', 'volatile-lru')
  for (const node of others) await configure(node.port, '64mb', 'noeviction')
  const { log } = await gatewayOn(t, cluster.url)
  const line = await log.logged(evictionWarning)
  t.match(line, { nodes: [{ node: `127.0.0.1:${evicts!.port}`, maxmemory: MIB_64, policy: 'volatile-lru' }] })
  t.equal((line.nodes as unknown[]).length, 1, 'the masters that do not evict are not named')
})

t.test('each reconnect reads the policy again: what changed is said, once', async (t) => {
  const redis = await startRedis({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'] })
  t.teardown(() => redis.stop())
  const { log } = await gatewayOn(t, redis.url)
  await log.logged(evictionWarning)
  // As a failover to a primary configured otherwise would look: the
  // policy changes and the connections are made again.
  await configure(redis.port, '64mb', 'noeviction')
  await killClients(redis.port)
  await log.logged(noEviction)
  await configure(redis.port, '64mb', 'volatile-ttl')
  await killClients(redis.port)
  const again = await log.logged((l) => evictionWarning(l) && /volatile-ttl/.test(String(l.msg)))
  t.match(again, { nodes: [{ policy: 'volatile-ttl' }] })
  t.equal(log.lines.filter(evictionWarning).length, 2, 'a line for each time it came to evict')
})

/** Drops every normal connection to the node at `port` but the one asking. */
async function killClients(port: number): Promise<void> {
  const probe = probeClient(port)
  try {
    await probe.connect()
    await probe.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
  } finally {
    probe.disconnect()
  }
}

t.test('the keys Redis evicted are a gauge, read on scrape', async (t) => {
  const redis = await startRedis({ args: ['--maxmemory', '4mb', '--maxmemory-policy', 'allkeys-lru'] })
  t.teardown(() => redis.stop())
  const { app } = await gatewayOn(t, redis.url)
  const evicted = async () =>
    Number(/^gatehouse_redis_evicted_keys (\d+)$/m.exec(await app.gatehouse.metrics.registry.metrics())?.[1])
  t.equal(await evicted(), 0, 'none yet')
  // 8 MiB into a 4 MiB Redis: it evicts to make room.
  const probe = probeClient(redis.port)
  await probe.connect()
  const filler = 'x'.repeat(8 * 1024)
  const pipeline = probe.pipeline()
  for (let i = 0; i < 1024; i++) pipeline.set(`filler:${i}`, filler)
  await pipeline.exec()
  const stats = async () => Number(/^evicted_keys:(\d+)\r?$/m.exec(await probe.info('stats'))?.[1])
  // Redis 7 goes on evicting after the writes (its eviction is time-boxed
  // per command and resumed by a timer), and a command can make it evict
  // more: the gauge read between two reads of Redis's own count.
  const before = await stats()
  const gauge = await evicted()
  const after = await stats()
  probe.disconnect()
  t.ok(before > 0, `Redis evicted ${before} keys`)
  t.ok(gauge >= before && gauge <= after, `the gauge says as many: ${before} <= ${gauge} <= ${after}`)
})
