import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { addressInUse, type FreePortOptions, onFreePort } from './ports.js'
import { servedBy } from './redis.js'
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js'
import { pollUntil } from './within.js'

const run = promisify(execFile)
const SERVER = process.env.REDIS_SERVER ?? 'redis-server'
const CLI = process.env.REDIS_CLI ?? 'redis-cli'

/** One redis-server (or sentinel) process of a topology. */
export interface RedisProcess {
  readonly port: number
  /** False once the process has exited. */
  alive(): boolean
  /** SIGKILL: no shutdown, no last write to replicas. */
  kill(): Promise<void>
  /**
   * SIGSTOP: the process answers nothing while its sockets stay open, as a
   * hung host or a partition looks to its peers. `thaw` (SIGCONT) resumes it.
   */
  freeze(): void
  thaw(): void
}

/**
 * Spawns `redis-server` with `args(port)` on a free port and waits until it
 * answers; on a port taken meanwhile, again on another.
 */
function spawnRedis(args: (port: number) => string[], options: FreePortOptions = {}): Promise<RedisProcess> {
  return onFreePort((port) => spawnRedisOn(port, args(port)), options)
}

async function spawnRedisOn(port: number, args: string[]): Promise<RedisProcess> {
  const proc: ChildProcess = spawn(SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-2_000)
  }
  proc.stdout!.on('data', keep)
  proc.stderr!.on('data', keep)
  const failed = new Promise<never>((_, reject) => {
    proc.once('error', (err) => reject(new Error(`cannot start ${SERVER}: ${err.message}`)))
    proc.once('exit', (code) => {
      const message = `${SERVER} exited with ${code}: ${output.slice(-500)}`
      reject(/Address already in use/i.test(output) ? addressInUse(message) : new Error(message))
    })
  })
  failed.catch(() => {})
  // Our own process must answer: another server on this port would answer PING too.
  await Promise.race([failed, pollUntil(() => servedBy(probeClient(port), proc.pid), 10_000)]).catch(
    (err: unknown) => {
      proc.kill('SIGKILL')
      throw err
    },
  )
  const alive = () => proc.exitCode === null && proc.signalCode === null
  return {
    port,
    alive,
    freeze: () => void (alive() && proc.kill('SIGSTOP')),
    thaw: () => void (alive() && proc.kill('SIGCONT')),
    kill: async () => {
      if (!alive()) return
      await new Promise<void>((resolve) => {
        proc.removeAllListeners('exit')
        proc.once('exit', () => resolve())
        proc.kill('SIGKILL')
      })
    },
  }
}

/** A short-lived connection to one node, for the test's own checks. */
export function probeClient(port: number): Redis {
  const probe = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    connectTimeout: 500,
    commandTimeout: 2_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  })
  probe.on('error', () => {})
  return probe
}

/** `INFO replication` of one node, or '' when it does not answer. */
async function replicationInfo(port: number): Promise<string> {
  const probe = probeClient(port)
  try {
    await probe.connect()
    return await probe.info('replication')
  } catch {
    return ''
  } finally {
    probe.disconnect()
  }
}

/** ROLE of one node: `master` with how many replicas, or `slave`; '' when it does not answer. */
export async function roleOf(port: number): Promise<string> {
  const probe = probeClient(port)
  try {
    await probe.connect()
    const [role, , replicas] = (await probe.call('ROLE')) as [string, unknown, unknown]
    return role === 'master' ? `master:${(replicas as unknown[]).length}` : role
  } catch {
    return ''
  } finally {
    probe.disconnect()
  }
}

/** How many times one node has run `command` since it started (`INFO commandstats`). */
export async function commandCalls(port: number, command: string): Promise<number> {
  const probe = probeClient(port)
  try {
    await probe.connect()
    const stats = await probe.info('commandstats')
    // A subcommand's stat is `cmdstat_cluster|info`, whose `|` read as a regex alternation miscounted.
    const name = command.toLowerCase().replace(/[|\\^$.*+?()[\]{}]/g, '\\$&')
    return Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0)
  } finally {
    probe.disconnect()
  }
}

/**
 * Calls `ask` (a `/readyz`), again each time it answers, until a slot check
 * has begun since: one that has asked each of `answering` (masters that
 * answer) `CLUSTER INFO` once more than before. The check asks every master
 * at once (cluster-coverage.ts), so by then one that cannot answer holds
 * its question too. `/readyz` answers from the last check for a second,
 * hence asking again. Resolves with every call made, answered or not;
 * rejects past `bound` ms.
 */
export async function untilSlotCheck<T>(
  answering: readonly RedisProcess[],
  ask: () => Promise<T>,
  bound = 5_000,
): Promise<Promise<T>[]> {
  const before = await Promise.all(answering.map((n) => commandCalls(n.port, 'cluster|info')))
  const asked: Promise<T>[] = []
  let answered = 0
  await pollUntil(async () => {
    if (asked.length === answered) asked.push(ask().finally(() => answered++))
    const now = await Promise.all(answering.map((n) => commandCalls(n.port, 'cluster|info')))
    return now.every((n, i) => n > before[i]!)
  }, bound)
  return asked
}

/** `HGET` on one node as it holds the hash, replica or not (a Cluster replica answers reads only after READONLY). */
export async function hgetOn(port: number, key: string, field: string): Promise<string | null> {
  const probe = probeClient(port)
  try {
    await probe.connect()
    await probe.call('READONLY')
    return await probe.hget(key, field)
  } finally {
    probe.disconnect()
  }
}

/** `ZSCORE` on one node as it holds the sorted set, replica or not (see `hgetOn`). */
export async function zscoreOn(port: number, key: string, member: string): Promise<string | null> {
  const probe = probeClient(port)
  try {
    await probe.connect()
    await probe.call('READONLY')
    return await probe.zscore(key, member)
  } finally {
    probe.disconnect()
  }
}

const common = (port: number, dir: string) => [
  '--port',
  String(port),
  '--bind',
  '127.0.0.1',
  '--save',
  '',
  '--appendonly',
  'no',
  '--dir',
  dir,
]

export interface TestRedisCluster {
  /** `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,…`, every node a seed */
  readonly url: string
  /** Every node, masters and replicas alike (`ownerOf` tells which is which). */
  readonly nodes: readonly RedisProcess[]
  /** The master that serves `key`'s slot now, and its replicas (none in a cluster without them). */
  ownerOf(key: string): Promise<{ master: RedisProcess; replicas: RedisProcess[] }>
  /**
   * Resolves once `replica` says it is a master and every node still
   * running reports `cluster_state:ok`, so all of them route its slots to
   * it (bounded).
   */
  promoted(replica: RedisProcess): Promise<void>
  stop(): Promise<void>
}

/** Options of `startRedisCluster`. */
export interface TestRedisClusterOptions {
  /** Replicas per master, 0 or 1. Default 0. */
  readonly replicas?: 0 | 1
  /**
   * `cluster-require-full-coverage`: with `true`, Redis's default, every
   * node refuses every key once a slot is unserved; with `false` the
   * others go on serving theirs.
   */
  readonly requireFullCoverage?: boolean
}

/** `INFO`-style `key:value` lines of one node's `CLUSTER INFO`, or '' when it does not answer. */
async function clusterInfo(port: number): Promise<string> {
  const probe = probeClient(port)
  try {
    await probe.connect()
    return String(await probe.call('CLUSTER', 'INFO'))
  } catch {
    return ''
  } finally {
    probe.disconnect()
  }
}

/** Highest port a Cluster node may take: its cluster bus listens 10000 above it. */
const CLUSTER_PORT_MAX = 65_535 - 10_000

/**
 * A real Redis Cluster of 3 masters (and, if asked, a replica of each) on
 * free ports, slots spread and replicas assigned by `redis-cli --cluster
 * create`, ready once every node reports `cluster_state:ok` and every
 * replica has finished its first sync (before that a write could not be
 * confirmed, nor a replica be promoted).
 */
export async function startRedisCluster(options: TestRedisClusterOptions = {}): Promise<TestRedisCluster> {
  const replicas = options.replicas ?? 0
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cluster-'))
  const spawned = await Promise.allSettled(
    Array.from({ length: 3 * (1 + replicas) }, () =>
      spawnRedis(
        (port) => [
          ...common(port, dir),
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          // How long a silent master takes to be called failed, ms: short,
          // so a failover takes seconds, yet long enough that a loaded
          // machine does not fail over a live one.
          '--cluster-node-timeout',
          '2000',
          // A replica may take over however long since it last heard its
          // master: on a loaded test machine it can lag, and a refusal to
          // fail over would leave the slots down for good.
          '--cluster-replica-validity-factor',
          '0',
          '--cluster-require-full-coverage',
          options.requireFullCoverage === false ? 'no' : 'yes',
        ],
        { max: CLUSTER_PORT_MAX },
      ),
    ),
  )
  const nodes = spawned.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  const ports = nodes.map((n) => n.port)
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.kill()))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const failed = spawned.find((s) => s.status === 'rejected')
    if (failed) throw failed.reason
    await run(
      CLI,
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    )
    await pollUntil(async () => {
      const infos = await Promise.all(ports.map(clusterInfo))
      return infos.every(
        (info) => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${ports.length}`),
      )
    }, 20_000)
    // Ready once each replica's link is up and each master counts its
    // replicas online: a confirmed write WAITs only when the master's ROLE
    // lists a replica, and a replica can report its link up before its
    // master has it online.
    await pollUntil(async () => {
      const infos = await Promise.all(ports.map(replicationInfo))
      return infos.every((info) =>
        info.includes('role:master')
          ? (info.match(/state=online/g)?.length ?? 0) >= replicas
          : info.includes('master_link_status:up'),
      )
    }, 20_000)
  } catch (err) {
    await stop()
    throw err
  }
  const byPort = new Map(nodes.map((n) => [n.port, n]))
  const live = () => nodes.filter((n) => n.alive())
  return {
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    nodes,
    async ownerOf(key) {
      const probe = probeClient(live()[0]!.port)
      try {
        await probe.connect()
        const slot = Number(await probe.call('CLUSTER', 'KEYSLOT', key))
        // CLUSTER NODES, a line a node: id ip:port@bus flags master-id ping pong epoch link slot…
        // (CLUSTER SLOTS leaves out a replica until it has gossiped a replication offset.)
        const lines = String(await probe.call('CLUSTER', 'NODES'))
          .trim()
          .split('\n')
          .map((line) => line.split(' '))
        const portOf = (address: string) => Number(address.split('@')[0]!.split(':').at(-1))
        const serves = (range: string) => {
          const [first, last = first] = range.split('-').map(Number)
          return first! <= slot && slot <= last!
        }
        const owner = lines.find((f) => f[2]!.includes('master') && f.slice(8).some(serves))
        if (!owner) throw new Error(`no master serves slot ${slot}`)
        return {
          master: byPort.get(portOf(owner[1]!))!,
          replicas: lines.filter((f) => f[3] === owner[0]).map((f) => byPort.get(portOf(f[1]!))!),
        }
      } finally {
        probe.disconnect()
      }
    },
    async promoted(replica) {
      await pollUntil(async () => (await replicationInfo(replica.port)).includes('role:master'), 20_000)
      await pollUntil(async () => {
        const infos = await Promise.all(live().map((n) => clusterInfo(n.port)))
        return infos.every((info) => info.includes('cluster_state:ok'))
      }, 20_000)
    },
    stop,
  }
}

export interface TestRedisSentinel {
  /** `redis+sentinel://127.0.0.1:{sentinel}/{master name}` */
  readonly url: string
  readonly name: string
  readonly primary: RedisProcess
  readonly replica: RedisProcess
  readonly sentinel: RedisProcess
  /**
   * The replica replicates through this relay, so a test can hold what the
   * primary sends it (`holdReplies`) and so make a write that never reaches it.
   */
  readonly link: TcpProxy
  /** Port of the primary Sentinel names right now. */
  currentPrimaryPort(): Promise<number>
  /** Resolves once Sentinel names the replica as primary and it says it is one (bounded). */
  promoted(): Promise<void>
  stop(): Promise<void>
}

/**
 * A primary, one replica and one sentinel (quorum 1, down-after 1000 ms),
 * each a real process on a free port: the smallest topology in which
 * Sentinel promotes a replica when the primary dies.
 */
export async function startRedisSentinel(): Promise<TestRedisSentinel> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-sentinel-'))
  const name = 'ghprimary'
  const primary = await spawnRedis((port) => common(port, dir))
  const primaryPort = primary.port
  const link = await startTcpProxy(`redis://127.0.0.1:${primaryPort}/0`)
  const linkPort = Number(new URL(link.url).port)
  const replica = await spawnRedis((port) => [
    ...common(port, dir),
    '--replicaof',
    '127.0.0.1',
    String(linkPort),
  ])
  const replicaPort = replica.port
  await pollUntil(async () => (await replicationInfo(replicaPort)).includes('master_link_status:up'), 10_000)
  // And the primary counts it online, as a confirmed write's WAIT needs
  // (see startRedisCluster).
  await pollUntil(async () => (await replicationInfo(primaryPort)).includes('state=online'), 10_000)
  const conf = join(dir, 'sentinel.conf')
  // failover-timeout also delays Sentinel's correction of a replica that
  // points elsewhere than the primary (ours points at the relay): long
  // enough that it never happens during a test.
  const sentinelConfig = (sentinelPort: number) => {
    writeFileSync(
      conf,
      [
        `port ${sentinelPort}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 1`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 60000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    )
    return [conf, '--sentinel']
  }
  const sentinel = await spawnRedis(sentinelConfig)
  const sentinelPort = sentinel.port
  // Sentinel learns of the replica from the primary's INFO, every 10 s at
  // first; a failover before that would find no replica to promote.
  await pollUntil(async () => {
    const probe = probeClient(sentinelPort)
    try {
      await probe.connect()
      const replicas = (await probe.call('SENTINEL', 'REPLICAS', name)) as string[][]
      return replicas.some((r) => r.includes(String(replicaPort)))
    } catch {
      return false
    } finally {
      probe.disconnect()
    }
  }, 20_000)
  const currentPrimaryPort = async () => {
    const probe = probeClient(sentinelPort)
    try {
      await probe.connect()
      const [, port] = (await probe.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as [string, string]
      return Number(port)
    } finally {
      probe.disconnect()
    }
  }
  return {
    url: `redis+sentinel://127.0.0.1:${sentinelPort}/${name}`,
    name,
    primary,
    replica,
    sentinel,
    link,
    currentPrimaryPort,
    async promoted() {
      await pollUntil(async () => (await currentPrimaryPort().catch(() => 0)) === replicaPort, 20_000)
      await pollUntil(async () => (await replicationInfo(replicaPort)).includes('role:master'), 20_000)
    },
    async stop() {
      await Promise.all([sentinel.kill(), replica.kill(), primary.kill()])
      await link.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * A sentinel that monitors nothing (one just deployed, or reset): it
 * answers `GET-MASTER-ADDR-BY-NAME` for any name with null. With
 * `monitoring`, one that monitors that primary and no peer: one restarted
 * from the config it was deployed with after its primary died, which names
 * the dead primary for as long as it finds no peer to tell it otherwise
 * (it meets its peers only through the primaries it monitors). `stop` kills
 * it and removes its directory.
 */
export async function startLoneSentinel(monitoring?: {
  readonly name: string
  readonly port: number
}): Promise<{ readonly port: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-lone-sentinel-'))
  const conf = join(dir, 'sentinel.conf')
  const sentinel = await spawnRedis((port) => {
    const monitor = monitoring ? [`sentinel monitor ${monitoring.name} 127.0.0.1 ${monitoring.port} 1`] : []
    writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, ...monitor, ''].join('\n'))
    return [conf, '--sentinel']
  })
  return {
    port: sentinel.port,
    async stop() {
      await sentinel.kill()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** The keys matching `pattern` on the nodes of `cluster` still running, masters and replicas alike. */
export async function keysOnCluster(cluster: TestRedisCluster, pattern: string): Promise<Set<string>> {
  const keys = new Set<string>()
  for (const node of cluster.nodes.filter((n) => n.alive())) {
    const probe = probeClient(node.port)
    try {
      await probe.connect()
      for (const key of await probe.keys(pattern)) keys.add(key)
    } finally {
      probe.disconnect()
    }
  }
  return keys
}
