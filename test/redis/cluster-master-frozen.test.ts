/**
 * A Cluster master that is alive but answers nothing (SIGSTOP: a hung
 * host, a paused VM) keeps its sockets open, and the kernel still accepts
 * connections to it: no reset, no refusal, only silence. The slot check
 * must still answer within its bound, and not pile connections on it.
 */
import { execFileSync } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import type { Cluster } from 'ioredis'
import t from 'tap'
import { parseStore, type RedisStoreConfig } from '../../src/config/store-url.js'
import { ClusterCoverage } from '../../src/redis/cluster-coverage.js'
import { closeRedisClient, createRedisClient, whenReady } from '../../src/redis/connection.js'
import { buildTestApp } from '../helpers/app.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { commandCalls, probeClient, startRedisCluster, untilSlotCheck } from '../helpers/redis-topology.js'
import { pollUntil } from '../helpers/within.js'

/** docs/deployment.md: a check at most 1 s old, then the 2 s connect timeout. */
const NOT_READY_WITHIN_MS = 3_000
/**
 * What a loaded test machine may add to the bound: late timers, slow answers.
 * The measured 0.1–2.2 s sits well inside the bound, and a check that never
 * notices (as before the fix: ok for as long as the master was gone) fails either way.
 */
const SLACK_MS = 3_000

/** TCP connections this machine holds open to `port`, from the client side. */
function establishedTo(port: number): number {
  const out = execFileSync('ss', ['-Htn', 'state', 'established', `( dport = :${port} )`]).toString()
  return out.split('\n').filter((l) => l.trim() !== '').length
}

t.test(
  'a frozen master: /readyz 503 within the bound, every answer bounded, no pile of probes',
  async (t) => {
    const cluster = await startRedisCluster({ requireFullCoverage: false })
    t.teardown(() => cluster.stop())
    const stack = await startObservedStack(t, {
      config: { store: cluster.url, keyPrefix: 'gh:', localCache: 0 },
    })
    const base = stack.gateway.url
    t.equal((await fetch(`${base}/readyz`)).status, 200, 'ready with every master up')
    const frozen = (await cluster.ownerOf('fHh')).master
    const survivors = cluster.nodes.filter((n) => n !== frozen)
    const before = establishedTo(frozen.port)
    const frozenInfoBefore = await commandCalls(frozen.port, 'cluster|info')

    frozen.freeze()
    let thawed = false
    t.teardown(() => {
      if (!thawed) frozen.thaw()
    })
    const stopped = performance.now()
    let first503: number | undefined
    let slowest = 0
    let asked = 0
    const infoBefore = await Promise.all(survivors.map((n) => commandCalls(n.port, 'cluster|info')))
    const slotsBefore = await Promise.all(survivors.map((n) => commandCalls(n.port, 'cluster|slots')))
    let most = 0
    while (performance.now() - stopped < NOT_READY_WITHIN_MS + SLACK_MS + 2_000) {
      const sent = performance.now()
      // One after another, with a burst of scrapes and probes beside each.
      const [answer] = await Promise.all([
        fetch(`${base}/readyz`),
        ...Array.from({ length: 20 }, () => fetch(`${base}/readyz`).then((a) => a.text())),
        ...Array.from({ length: 5 }, () => fetch(`${stack.gateway.url}/metrics`).then((a) => a.text())),
      ])
      const took = performance.now() - sent
      const body = await answer.text()
      slowest = Math.max(slowest, took)
      asked++
      if (answer.status === 503 && first503 === undefined) first503 = performance.now() - stopped
      if (answer.status === 503) t.notMatch(body, /127\.0\.0\.1|localhost/, 'no address on /readyz')
      most = Math.max(most, establishedTo(frozen.port))
    }
    const seconds = Math.ceil((performance.now() - stopped) / 1_000)
    t.comment(
      `first 503 at ${Math.round(first503 ?? -1)} ms; slowest /readyz ${Math.round(slowest)} ms over ${asked} rounds; connections to the frozen master: ${before} before, at most ${most} while frozen`,
    )
    t.ok(first503 !== undefined && first503 < NOT_READY_WITHIN_MS + SLACK_MS, 'not ready within the bound')
    t.ok(
      slowest < NOT_READY_WITHIN_MS + SLACK_MS,
      `no /readyz waited past the bound (${Math.round(slowest)} ms)`,
    )
    const info = (await Promise.all(survivors.map((n) => commandCalls(n.port, 'cluster|info')))).map(
      (n, i) => n - infoBefore[i]!,
    )
    const slots = (await Promise.all(survivors.map((n) => commandCalls(n.port, 'cluster|slots')))).map(
      (n, i) => n - slotsBefore[i]!,
    )
    t.comment(
      `over ${seconds} s: CLUSTER INFO per survivor ${info.join(', ')}; CLUSTER SLOTS per survivor ${slots.join(', ')}`,
    )
    for (const n of info) t.ok(n <= seconds + 2, `${n} CLUSTER INFO on a survivor in ${seconds} s`)
    t.ok(slots.reduce((a, b) => a + b, 0) <= 3 * (seconds + 2) + 10, 'CLUSTER SLOTS bounded')
    t.ok(most <= before + 3, `connections to the frozen master bounded (${most}, ${before} before)`)

    frozen.thaw()
    thawed = true
    const admin = probeClient(frozen.port)
    t.teardown(() => admin.disconnect())
    await admin.connect()
    await pollUntil(async () => (await fetch(`${base}/readyz`)).status === 200, 15_000)
    // What the frozen master was sent while it slept, run once it woke.
    const owed = (await commandCalls(frozen.port, 'cluster|info')) - frozenInfoBefore
    t.comment(`CLUSTER INFO the thawed master ran for its ${seconds} s asleep and after: ${owed}`)
    t.ok(owed <= seconds + 4, `no pile of probes run on waking (${owed})`)
    const clients = String(await admin.call('CLIENT', 'LIST'))
      .trim()
      .split('\n').length
    t.comment(`clients on the thawed master: ${clients}`)
    t.ok(clients <= before + 4, `no pile of connections once thawed (${clients})`)
  },
)

t.test(
  'the gateway closes while a slot check waits on a frozen master: close is bounded, nothing left',
  async (t) => {
    const cluster = await startRedisCluster({ requireFullCoverage: false })
    t.teardown(() => cluster.stop())
    const app = await buildTestApp(t, { store: cluster.url, keyPrefix: 'gh:', localCache: 0 })
    await app.inject({ url: '/readyz' })
    const frozen = (await cluster.ownerOf('fHh')).master
    frozen.freeze()
    t.teardown(() => frozen.thaw())
    // A check of its own, past the last one's second, left waiting on the frozen master.
    const survivors = cluster.nodes.filter((n) => n !== frozen)
    const asked = await untilSlotCheck(survivors, () => app.inject({ url: '/readyz' }))
    const started = performance.now()
    await app.close()
    const took = performance.now() - started
    const answers = await Promise.all(asked)
    t.comment(
      `close took ${Math.round(took)} ms; /readyz asked ${asked.length} times, the last answered ${answers.at(-1)!.statusCode}`,
    )
    t.ok(took < NOT_READY_WITHIN_MS + SLACK_MS, `close bounded (${Math.round(took)} ms)`)
    await pollUntil(async () => establishedTo(frozen.port) === 0, 5_000)
    t.pass('no connection to the frozen master left')
  },
)

/**
 * The test above cannot see `ClusterCoverage.close()` at work: the probe's
 * command timeout, the store's 1 s, ends its wait on the frozen master and
 * drops it as fast as close does. Here the store's client is made with a
 * command timeout (which the probe takes from it) far past the bound the
 * test allows, so only close() can end the wait in time.
 */
const PROBE_COMMAND_TIMEOUT_MS = 20_000
/** How soon after close() the probe's socket must have left `established`. */
const CLOSED_WITHIN_MS = 3_000
/**
 * How soon the check out at close() must answer: its command fails when
 * ioredis destroys the socket the frozen master never closes, 2 s after
 * the disconnect (its `disconnectTimeout`), plus slack for a loaded machine.
 */
const ANSWERED_WITHIN_MS = 8_000

t.test(
  "close() drops the slot check's connection to a frozen master at once, not at its command timeout",
  async (t) => {
    const cluster = await startRedisCluster({ requireFullCoverage: false })
    t.teardown(() => cluster.stop())
    const client = createRedisClient(parseStore(cluster.url) as RedisStoreConfig, {
      commandTimeout: PROBE_COMMAND_TIMEOUT_MS,
    })
    t.teardown(() => closeRedisClient(client, 100))
    await whenReady(client)
    const coverage = new ClusterCoverage(client as Cluster)
    t.teardown(() => coverage.close())
    t.equal(await coverage.check(), undefined, 'every slot served with every master up')
    const frozen = (await cluster.ownerOf('fHh')).master
    frozen.freeze()
    t.teardown(() => frozen.thaw())

    // A check that asks the frozen master over the probe the last one left connected.
    const survivors = cluster.nodes.filter((n) => n !== frozen)
    const [check] = await untilSlotCheck(survivors, () => coverage.check())
    const waiting = establishedTo(frozen.port)
    const started = performance.now()
    coverage.close()
    await pollUntil(async () => establishedTo(frozen.port) < waiting, CLOSED_WITHIN_MS).catch(() => {})
    const left = establishedTo(frozen.port)
    t.comment(`connections to the frozen master: ${waiting} while the check waits, ${left} after close`)
    t.ok(
      left < waiting,
      `close() dropped the probe waiting on the frozen master (${left} of ${waiting} left)`,
    )
    const found = await check!
    const took = performance.now() - started
    t.ok(
      took < ANSWERED_WITHIN_MS,
      `the check out at close answered within ioredis's disconnect timeout, not the command timeout (${Math.round(took)} ms)`,
    )
    t.match(found?.lost, [{ node: `127.0.0.1:${frozen.port}` }], 'and named the master as not answering')
  },
)
