import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { freePort } from './ports.js'
import { answersPing, pollUntil } from './redis.js'
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js'

const run = promisify(execFile)
const SERVER = process.env.REDIS_SERVER ?? 'redis-server'
const CLI = process.env.REDIS_CLI ?? 'redis-cli'

/** One redis-server (or sentinel) process of a topology. */
export interface RedisProcess {
  readonly port: number
  /** SIGKILL: no shutdown, no last write to replicas. */
  kill(): Promise<void>
}

/** Spawns `redis-server` with `args` and waits until it answers PING. */
async function spawnRedis(port: number, args: string[]): Promise<RedisProcess> {
  const proc: ChildProcess = spawn(SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-2_000)
  }
  proc.stdout!.on('data', keep)
  proc.stderr!.on('data', keep)
  const failed = new Promise<never>((_, reject) => {
    proc.once('error', (err) => reject(new Error(`cannot start ${SERVER}: ${err.message}`)))
    proc.once('exit', (code) => reject(new Error(`${SERVER} exited with ${code}: ${output.slice(-500)}`)))
  })
  failed.catch(() => {})
  await Promise.race([failed, pollUntil(() => answers(port), 10_000)])
  return {
    port,
    kill: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      await new Promise<void>((resolve) => {
        proc.removeAllListeners('exit')
        proc.once('exit', () => resolve())
        proc.kill('SIGKILL')
      })
    },
  }
}

function answers(port: number): Promise<boolean> {
  return answersPing(probeClient(port))
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
  /** `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3` */
  readonly url: string
  readonly nodes: readonly RedisProcess[]
  stop(): Promise<void>
}

/**
 * A real 3-master Redis Cluster on free ports, slots spread by
 * `redis-cli --cluster create`, ready once every node reports `cluster_state:ok`.
 */
export async function startRedisCluster(): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cluster-'))
  const ports = await Promise.all([freePort(), freePort(), freePort()])
  const nodes = await Promise.all(
    ports.map((port) =>
      spawnRedis(port, [
        ...common(port, dir),
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '2000',
      ]),
    ),
  )
  await run(CLI, ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-yes'], {
    timeout: 30_000,
  })
  await pollUntil(async () => {
    const states = await Promise.all(
      ports.map(async (port) => {
        const probe = probeClient(port)
        try {
          await probe.connect()
          const info = String(await probe.call('CLUSTER', 'INFO'))
          return info.includes('cluster_state:ok') && info.includes('cluster_known_nodes:3')
        } catch {
          return false
        } finally {
          probe.disconnect()
        }
      }),
    )
    return states.every(Boolean)
  }, 20_000)
  return {
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    nodes,
    async stop() {
      await Promise.all(nodes.map((n) => n.kill()))
      rmSync(dir, { recursive: true, force: true })
    },
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
  const [primaryPort, replicaPort, sentinelPort] = await Promise.all([freePort(), freePort(), freePort()])
  const primary = await spawnRedis(primaryPort, common(primaryPort, dir))
  const link = await startTcpProxy(`redis://127.0.0.1:${primaryPort}/0`)
  const linkPort = Number(new URL(link.url).port)
  const replica = await spawnRedis(replicaPort, [
    ...common(replicaPort, dir),
    '--replicaof',
    '127.0.0.1',
    String(linkPort),
  ])
  await pollUntil(async () => (await replicationInfo(replicaPort)).includes('master_link_status:up'), 10_000)
  const conf = join(dir, 'sentinel.conf')
  // failover-timeout also delays Sentinel's correction of a replica that
  // points elsewhere than the primary (ours points at the relay): long
  // enough that it never happens during a test.
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
  const sentinel = await spawnRedis(sentinelPort, [conf, '--sentinel'])
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
