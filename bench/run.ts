/**
 * `npm run bench`: Gatehouse against its peers, measured in one run.
 *
 * Starts a dev IdP, Redis, a static upstream and every peer (each in a
 * process of its own, started afresh for every round), then loads the
 * peers one after another in interleaved rounds and reports throughput and latency as ratios against
 * the peers, since absolute figures on a shared machine mean little. Also
 * measures the refresh storm, memory per session and the cookie size.
 *
 *   npm run bench                     full run; updates docs/performance.md
 *   npm run bench -- --smoke          a few hundred requests per peer, no docs
 *   npm run bench -- --profile        also write a CPU profile of Gatehouse
 *
 * Options: --rounds N, --duration S, --warmup S, --connections N,
 * --tool wrk|autocannon, --storm N, --sessions N, --out DIR, --no-docs,
 * --tracing-baseline REF (the tree without tracing; see bench/tracing.ts).
 *
 * The Gatehouse peers run the compiled build, as `gatehouse start` and the
 * image do; a full run builds it first. The smoke run takes the sources
 * through tsx, as the rest of `npm test` does, and builds nothing.
 * `BENCH_GATEHOUSE=src|dist` chooses either way.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { type DevIdp, startDevIdp } from '../dev/idp.js'
import { login } from '../test/helpers/login.js'
import { onFreePorts } from '../test/helpers/ports.js'
import { startRedis } from '../test/helpers/redis.js'
import { startRedisCluster } from '../test/helpers/redis-topology.js'
import { cpuSeconds } from './cpu.js'
import { gatehouseTree } from './gatehouse-tree.js'
import { defaultTool, type LoadResult, type LoadTool, runLoad } from './load.js'
import { type PeerProcess, spawnPeer } from './peers.js'
import { hottest } from './profile.js'
import {
  type BenchReport,
  markdown,
  PEERS,
  type PeerName,
  type PeerRound,
  type PeerSummary,
  summarise,
  targets,
  text,
} from './report.js'
import { refreshStorm, type StormResult } from './storm.js'
import { measureTracing } from './tracing.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const { values: args } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '32' },
    tool: { type: 'string' },
    storm: { type: 'string' },
    sessions: { type: 'string' },
    out: { type: 'string' },
    'no-docs': { type: 'boolean', default: false },
    'tracing-baseline': { type: 'string' },
  },
})

const smoke = args.smoke
const settings = {
  rounds: Number(args.rounds ?? (smoke ? 1 : 5)),
  duration: Number(args.duration ?? 10),
  // The issue's reference runs: a target still optimising after 4 s (the
  // ceiling) or 15–20 s (Gatehouse) is measured warm only after this long.
  warmup: Number(args.warmup ?? (smoke ? 0 : 15)),
  connections: Number(args.connections),
  // A smoke run sends a fixed number of requests, which only autocannon does.
  tool: (smoke ? 'autocannon' : (args.tool ?? defaultTool())) as LoadTool,
  amount: smoke ? 300 : undefined,
  storm: Number(args.storm ?? (smoke ? 200 : 1_000)),
  sessions: Number(args.sessions ?? (smoke ? 10_000 : 100_000)),
}
const tree = gatehouseTree(smoke)
if (tree === 'dist') {
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' })
  if (build.status !== 0) throw new Error(`npm run build failed (${build.status ?? build.signal})`)
}
const outDir = args.out ?? join(root, 'bench', 'results')
const writeDocs = !smoke && !args['no-docs'] && args.out === undefined
// s: longer than a whole run, so no refresh falls inside a load round, and
// shorter than the idle timeout, so the storm's jump past it keeps the session.
const ACCESS_TOKEN_TTL = 900
const CLIENT_SECRET = randomBytes(24).toString('base64url')

const startedAt = Date.now()
const stops: (() => Promise<void>)[] = []
async function cleanup() {
  for (const stop of stops.reverse()) await stop().catch(() => {})
}

try {
  const report = await main()
  console.log(text(report))
  mkdirSync(outDir, { recursive: true })
  const file = join(outDir, `${report.date.replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)
  console.log(`results: ${file}`)
  if (writeDocs) updateDocs(markdown(report))
} finally {
  await cleanup()
}

async function main(): Promise<BenchReport> {
  const redis = await startRedis()
  stops.push(() => redis.stop())
  const cluster = await startRedisCluster()
  stops.push(() => cluster.stop())
  const upstream = await started(spawnPeer(['upstream']))
  const gatehouse = (issuer: string, port: number, store: string) =>
    spawnPeer(['gatehouse', join(root, 'bench', 'gatehouse.yaml')], {
      env: {
        GATEHOUSE_PORT: String(port),
        BENCH_ISSUER: issuer,
        BENCH_CLIENT_SECRET: CLIENT_SECRET,
        BENCH_SESSION_SECRET: randomBytes(32).toString('base64url'),
        BENCH_STORE: store,
        BENCH_KEY_PREFIX: redis.prefix,
        BENCH_UPSTREAM: upstream.url,
        BENCH_GATEHOUSE: tree,
      },
      nodeFlags:
        args.profile && store === 'memory'
          ? ['--cpu-prof', `--cpu-prof-dir=${join(outDir, 'profiles')}`]
          : [],
    })

  /**
   * A dev IdP and the three Gatehouse peers. The IdP must know each one's
   * redirect URI, so their ports are chosen first; should another process
   * take one before its peer listens, onFreePorts starts them all again on
   * fresh ports.
   */
  const gateways = () =>
    onFreePorts(3, async (ports) => {
      const idp = await startDevIdp({
        accessTokenTtl: ACCESS_TOKEN_TTL,
        clients: [
          {
            clientId: 'gatehouse-bench',
            clientSecret: CLIENT_SECRET,
            redirectUris: ports.map((port) => `http://127.0.0.1:${port}/auth/callback`),
          },
        ],
      })
      const launched: PeerProcess[] = []
      try {
        for (const [i, store] of ['memory', redis.url, cluster.url].entries())
          launched.push(await gatehouse(idp.issuer, ports[i]!, store))
      } catch (err) {
        for (const peer of launched) await peer.stop()
        await idp.close()
        throw err
      }
      stops.push(() => idp.close(), ...launched.map((peer) => () => peer.stop()))
      const [memory, redisPeer, clusterPeer] = launched as [PeerProcess, PeerProcess, PeerProcess]
      return { idp, memory, redis: redisPeer, cluster: clusterPeer }
    })

  /**
   * Every peer but the upstream, freshly started and signed in. Two starts of
   * the same code differ by up to a third in CPU per request on a shared VM
   * (JIT and heap layout), so each round gets processes of its own and the
   * medians average over starts instead of trusting one.
   */
  async function launch(): Promise<Fleet> {
    const ceiling = await started(spawnPeer(['ceiling', upstream.url]))
    const fastifyProxy = await started(spawnPeer(['fastify-proxy', upstream.url]))
    const expressBff = await started(spawnPeer(['express-bff', upstream.url]))
    const { idp, ...gatehouses } = await gateways()
    const peers: Record<PeerName, PeerProcess> = {
      'direct upstream': upstream,
      'node-http-undici': ceiling,
      'fastify-http-proxy': fastifyProxy,
      'express-bff': expressBff,
      'gatehouse-memory': gatehouses.memory,
      'gatehouse-redis': gatehouses.redis,
      // A 3-master Redis Cluster: no local session cache there, so every
      // request reads the session from its node.
      'gatehouse-redis-cluster': gatehouses.cluster,
    }
    // Every peer gets the same request: a SPA's API call with its cookie and
    // anti-forgery header; the peers that do not need them ignore them.
    const memoryLogin = await gatehouseCookie(peers['gatehouse-memory'].url)
    const headers: Record<PeerName, Record<string, string>> = {
      'direct upstream': { cookie: memoryLogin.cookie, 'x-csrf': '1' },
      'node-http-undici': { cookie: memoryLogin.cookie, 'x-csrf': '1' },
      'fastify-http-proxy': { cookie: memoryLogin.cookie, 'x-csrf': '1' },
      'express-bff': { cookie: await expressCookie(peers['express-bff'].url), 'x-csrf': '1' },
      'gatehouse-memory': { cookie: memoryLogin.cookie, 'x-csrf': '1' },
      'gatehouse-redis': {
        cookie: (await gatehouseCookie(peers['gatehouse-redis'].url)).cookie,
        'x-csrf': '1',
      },
      'gatehouse-redis-cluster': {
        cookie: (await gatehouseCookie(peers['gatehouse-redis-cluster'].url)).cookie,
        'x-csrf': '1',
      },
    }
    return {
      idp,
      peers,
      headers,
      memoryLogin,
      async stop() {
        for (const [name, peer] of Object.entries(peers).reverse())
          if (name !== 'direct upstream') await peer.stop()
        await idp.close()
      },
    }
  }

  /**
   * One load on one peer, with the CPU time the peer's process spent on it.
   * Any non-2xx answer or socket error ends the run: a peer that refuses
   * requests is not being measured, and the smoke run in CI must fail on it.
   */
  const load = async (fleet: Fleet, peer: PeerName, duration: number): Promise<PeerRound> => {
    const { pid } = fleet.peers[peer]
    const before = cpuSeconds(pid)
    const result: LoadResult = await runLoad(settings.tool, {
      url: `${fleet.peers[peer].url}/api/items`,
      headers: fleet.headers[peer],
      connections: settings.connections,
      duration,
      ...(settings.amount === undefined ? {} : { amount: settings.amount }),
    })
    const cpuMicrosPerRequest = ((cpuSeconds(pid) - before) * 1e6) / Math.max(1, result.requests)
    if (result.failures > 0)
      throw new Error(
        `${peer} failed ${result.failures} of ${result.requests} requests (non-2xx or socket errors)`,
      )
    return { ...result, cpuMicrosPerRequest }
  }

  const rounds = new Map<PeerName, PeerRound[]>(PEERS.map((peer) => [peer, []]))
  let memoryLogin: Fleet['memoryLogin'] | undefined
  for (let round = 0; round < settings.rounds; round++) {
    const fleet = await launch()
    memoryLogin ??= fleet.memoryLogin
    // Rotate the order so no peer always runs first (or right after the slowest).
    const order = PEERS.map((_, i) => PEERS[(i + round) % PEERS.length]!)
    for (const peer of order) {
      // Right before its measurement, so each peer is measured at its warmest.
      if (settings.warmup > 0) await load(fleet, peer, settings.warmup)
      const result = await load(fleet, peer, settings.duration)
      rounds.get(peer)!.push(result)
      console.log(
        `round ${round + 1}/${settings.rounds} ${peer.padEnd(24)} ${Math.round(result.requestsPerSecond)} req/s, p99 ${result.p99.toFixed(2)} ms, CPU ${Math.round(result.cpuMicrosPerRequest)} µs/request`,
      )
    }
    await fleet.stop()
  }
  const summaries = new Map<PeerName, PeerSummary>(
    PEERS.map((peer) => [peer, summarise(peer, rounds.get(peer)!)]),
  )

  const fleet = await launch()
  memoryLogin ??= fleet.memoryLogin
  const storms: Record<string, StormResult> = {}
  for (const [name, peer] of [
    ['memory', fleet.peers['gatehouse-memory']],
    ['redis', fleet.peers['gatehouse-redis']],
  ] as const) {
    storms[name] = await refreshStorm({
      idp: fleet.idp,
      gateway: peer,
      cookie: (await gatehouseCookie(peer.url)).cookie,
      path: '/api/storm',
      count: settings.storm,
      accessTokenTtlMs: ACCESS_TOKEN_TTL * 1000,
    })
    console.log(`refresh storm (${name}): ${JSON.stringify(storms[name])}`)
  }

  await fleet.stop()
  const tracing = await measureTracing({
    root,
    upstream: upstream.url,
    baseline: args['tracing-baseline'],
    rounds: settings.rounds,
    duration: settings.duration,
    warmup: settings.warmup,
    connections: settings.connections,
    tool: settings.tool,
    amount: settings.amount,
  })
  console.log(`tracing: ${JSON.stringify(tracing)}`)
  await upstream.stop()
  if (args.profile) printProfile()

  const memory = measureMemory(settings.sessions)
  const cookie = {
    name: 'gatehouse',
    bytes: memoryLogin.cookie.length,
    setCookieBytes: memoryLogin.setCookieBytes,
  }
  const cpu = cpus()
  return {
    date: new Date().toISOString(),
    command: smoke
      ? 'npm run bench -- --smoke'
      : `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: {
      cpus: cpu.length,
      cpuModel: cpu[0]?.model.trim() ?? 'unknown',
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
    },
    settings: {
      tool: settings.tool,
      connections: settings.connections,
      durationSeconds: settings.amount === undefined ? settings.duration : 0,
      warmupSeconds: settings.warmup,
      rounds: settings.rounds,
      smoke,
      gatehouse: tree,
    },
    peers: [...summaries.values()],
    storms,
    memory,
    cookie,
    tracing,
    targets: targets(summaries, storms, memory, cookie, tracing),
  }

  async function started(peer: Promise<PeerProcess>): Promise<PeerProcess> {
    const running = await peer
    stops.push(() => running.stop())
    return running
  }
}

/** One round's peer processes, everything but the upstream, which is shared, and the gateways' IdP. */
interface Fleet {
  readonly idp: DevIdp
  readonly peers: Record<PeerName, PeerProcess>
  readonly headers: Record<PeerName, Record<string, string>>
  readonly memoryLogin: { cookie: string; setCookieBytes: number }
  stop(): Promise<void>
}

/** Signs a user in through the dev IdP and returns the session cookie as the browser sends it. */
async function gatehouseCookie(url: string): Promise<{ cookie: string; setCookieBytes: number }> {
  const result = await login(url, { user: `bench-${randomBytes(4).toString('hex')}` })
  const value = result.jar.get(url, 'gatehouse')
  const line = result.callback.headers.getSetCookie().find((c) => c.startsWith('gatehouse='))
  if (result.callback.status !== 302 || !value || !line)
    throw new Error(`login at ${url} failed: ${result.callback.status}`)
  return { cookie: `gatehouse=${value}`, setCookieBytes: line.length }
}

async function expressCookie(url: string): Promise<string> {
  const response = await fetch(`${url}/login`)
  const cookie = response.headers.getSetCookie()[0]?.split(';')[0]
  if (!response.ok || !cookie) throw new Error(`express peer login failed: ${response.status}`)
  return cookie
}

function measureMemory(count: number): BenchReport['memory'] {
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', join(root, 'bench', 'memory.ts'), String(count)],
    { encoding: 'utf8', cwd: root },
  )
  if (child.status !== 0) throw new Error(`memory measurement failed:\n${child.stderr}`)
  return JSON.parse(child.stdout.trim().split('\n').pop()!)
}

function printProfile(): void {
  const dir = join(outDir, 'profiles')
  // tsx's loader thread writes a profile too; the main thread's is the largest.
  const newest = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile') && statSync(join(dir, f)).mtimeMs >= startedAt)
    .sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0]
  if (!newest) return
  console.log(`\nGatehouse (memory) CPU profile: ${join(dir, newest)}\nself time, top functions:`)
  for (const fn of hottest(join(dir, newest), 25))
    console.log(`${fn.selfPercent.toFixed(1).padStart(6)}%  ${fn.name}`)
}

function updateDocs(section: string): void {
  const file = join(root, 'docs', 'performance.md')
  const start = '<!-- bench:start -->'
  const end = '<!-- bench:end -->'
  const doc = readFileSync(file, 'utf8')
  const from = doc.indexOf(start)
  const to = doc.indexOf(end)
  if (from === -1 || to === -1) throw new Error(`${file} has lost its ${start} … ${end} markers`)
  writeFileSync(file, `${doc.slice(0, from + start.length)}\n${section}\n${doc.slice(to)}`)
  console.log(`updated ${file}`)
}
