/**
 * This tree's Gatehouse against another commit's, in one run: what a change
 * costs per request, measured the way `npm run bench` measures its peers.
 *
 *   npx tsx bench/versus.ts <git-ref> [--store redis|memory] [--rounds N]
 *       [--duration S] [--warmup S] [--connections N] [--local-cache N]
 *
 * The other commit is unpacked with `git archive` into a temporary folder
 * that shares this tree's node_modules. Both run from their own
 * `bench/gatehouse.yaml` against the same dev IdP, Redis and upstream; each
 * round starts both afresh, signs in to each, warms both up and loads them
 * at the same time, each with its own load generator, so whatever else the
 * machine runs weighs on both alike. Prints the medians, the median of
 * per-round ratios (this tree / the other) of throughput and of CPU time
 * per request (user + system, from /proc, Linux only), and each one's
 * session cookie.
 *
 * `--profile-dir DIR` writes a CPU profile of each side's measured load
 * (`DIR/here-<round>.cpuprofile`, `DIR/there-<round>.cpuprofile`) and
 * prints the `bench/profile-diff.ts` command that compares them.
 *
 *   npx tsx bench/versus.ts ceiling [--store memory] ...
 *
 * loads the node:http + undici ceiling (bench/ceiling.ts) beside this tree
 * instead: on a VM whose speed swings from one minute to the next, two
 * peers loaded at the same time see the same machine, which sequential
 * rounds do not. Set BENCH_GATEHOUSE=dist to run the compiled build.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startDevIdp } from '../dev/idp.js'
import { login } from '../test/helpers/login.js'
import { onFreePorts } from '../test/helpers/ports.js'
import { startRedis } from '../test/helpers/redis.js'
import { cpuSeconds } from './cpu.js'
import { defaultTool, type LoadResult, runLoad } from './load.js'
import { type PeerProcess, spawnPeer } from './peers.js'
import { median } from './report.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    store: { type: 'string', default: 'redis' },
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    'local-cache': { type: 'string', default: '10000' },
    'profile-dir': { type: 'string' },
  },
})
const ref = positionals[0]
if (!ref) {
  console.error('usage: npx tsx bench/versus.ts <git-ref> [--store redis|memory] [--rounds N] ...')
  process.exit(2)
}
const settings = {
  rounds: Number(args.rounds),
  duration: Number(args.duration),
  warmup: Number(args.warmup),
  connections: Number(args.connections),
  tool: defaultTool(),
}

const againstCeiling = ref === 'ceiling'
const other = mkdtempSync(join(tmpdir(), 'gatehouse-versus-'))
const stops: (() => Promise<void>)[] = [async () => rmSync(other, { recursive: true, force: true })]
try {
  if (!againstCeiling) {
    execFileSync('sh', ['-c', `git -C "${root}" archive "${ref}" | tar -x -C "${other}"`])
    symlinkSync(join(root, 'node_modules'), join(other, 'node_modules'))
  }
  await main()
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
}

async function main(): Promise<void> {
  const redis = await startRedis()
  stops.push(() => redis.stop())
  const clientSecret = randomBytes(24).toString('base64url')
  const upstream = await spawnPeer(['upstream'])
  stops.push(() => upstream.stop())
  const store = args.store === 'memory' ? 'memory' : redis.url

  const gatehouse = (tree: string, port: number, name: string, issuer: string) =>
    spawnPeer(['gatehouse', join(tree, 'bench', 'gatehouse.yaml')], {
      script: join(tree, 'bench', 'peer-process.ts'),
      env: {
        // Two trees compare as the sources run; only the ceiling meets the build.
        BENCH_GATEHOUSE: againstCeiling ? (process.env.BENCH_GATEHOUSE ?? 'src') : 'src',
        GATEHOUSE_PORT: String(port),
        BENCH_ISSUER: issuer,
        BENCH_CLIENT_SECRET: clientSecret,
        BENCH_SESSION_SECRET: randomBytes(32).toString('base64url'),
        BENCH_STORE: store,
        BENCH_KEY_PREFIX: `${redis.prefix}${name}:`,
        BENCH_UPSTREAM: upstream.url,
        BENCH_LOCAL_CACHE: args['local-cache'],
      },
    })
  const cookieOf = async (peer: PeerProcess) => {
    const { jar } = await login(peer.url, { user: `bench-${randomBytes(4).toString('hex')}` })
    return `gatehouse=${jar.get(peer.url, 'gatehouse')!}`
  }
  const load = async (peer: PeerProcess, cookie: string, duration: number) => {
    const before = cpuSeconds(peer.pid)
    const result = await runLoad(settings.tool, {
      url: `${peer.url}/api/items`,
      headers: { cookie, 'x-csrf': '1' },
      connections: settings.connections,
      duration,
    })
    return { ...result, cpuMicrosPerRequest: ((cpuSeconds(peer.pid) - before) * 1e6) / result.requests }
  }

  const results = { here: [] as Measured[], there: [] as Measured[] }
  const cookies = { here: '', there: '' }
  for (let round = 0; round < settings.rounds; round++) {
    // Both peers' redirect URIs must be known to the IdP before they listen:
    // onFreePorts starts the round again on fresh ports should another
    // process take one first.
    const { idp, peers } = await onFreePorts(2, async ([here, there]) => {
      const idp = await startDevIdp({
        accessTokenTtl: 900,
        clients: [
          {
            clientId: 'gatehouse-bench',
            clientSecret,
            redirectUris: [here, there].map((port) => `http://127.0.0.1:${port}/auth/callback`),
          },
        ],
      })
      const started: PeerProcess[] = []
      try {
        started.push(await gatehouse(root, here!, 'here', idp.issuer))
        started.push(
          againstCeiling
            ? await spawnPeer(['ceiling', upstream.url])
            : await gatehouse(other, there!, 'there', idp.issuer),
        )
        return { idp, peers: { here: started[0]!, there: started[1]! } }
      } catch (err) {
        await Promise.all([...started.map((peer) => peer.stop()), idp.close()])
        throw err
      }
    })
    cookies.here = await cookieOf(peers.here)
    // The ceiling reads no cookie: it gets the same header Gatehouse does.
    cookies.there = againstCeiling ? cookies.here : await cookieOf(peers.there)
    const sides = ['here', 'there'] as const
    await Promise.all(sides.map((side) => load(peers[side], cookies[side], settings.warmup)))
    const profileDir = args['profile-dir']
    if (profileDir) await Promise.all(sides.map((side) => peers[side].profile('start')))
    const measured = await Promise.all(
      sides.map((side) => load(peers[side], cookies[side], settings.duration)),
    )
    if (profileDir) {
      mkdirSync(profileDir, { recursive: true })
      for (const side of sides) {
        const profile = await peers[side].profile('stop')
        if (profile) writeFileSync(join(profileDir, `${side}-${round + 1}.cpuprofile`), profile)
      }
    }
    for (const [i, side] of sides.entries()) {
      const result = measured[i]!
      results[side].push(result)
      console.log(
        `round ${round + 1}/${settings.rounds} ${side === 'here' ? 'this tree' : ref}: ${Math.round(result.requestsPerSecond)} req/s, ${Math.round(result.cpuMicrosPerRequest)} µs CPU/request, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms${result.failures ? `, ${result.failures} failed` : ''}`,
      )
    }
    await peers.here.stop()
    await peers.there.stop()
    await idp.close()
  }
  const summary = (rounds: Measured[]) => ({
    requestsPerSecond: Math.round(median(rounds.map((r) => r.requestsPerSecond))),
    cpuMicrosPerRequest: Math.round(median(rounds.map((r) => r.cpuMicrosPerRequest))),
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
    failures: rounds.reduce((n, r) => n + r.failures, 0),
  })
  const ratio = (of: (r: Measured) => number) =>
    Number(median(results.here.map((r, i) => of(r) / of(results.there[i]!))).toFixed(3))
  console.log(
    JSON.stringify({
      store: args.store,
      tool: settings.tool,
      rounds: settings.rounds,
      duration: settings.duration,
      connections: settings.connections,
      here: { ...summary(results.here), cookieBytes: cookies.here.length },
      there: { ref, ...summary(results.there), cookieBytes: cookies.there.length },
      throughputRatio: ratio((r) => r.requestsPerSecond),
      cpuPerRequestRatio: ratio((r) => r.cpuMicrosPerRequest),
    }),
  )
  const profileDir = args['profile-dir']
  if (profileDir) {
    const cpu = (rounds: Measured[]) => rounds.map((r) => r.cpuMicrosPerRequest.toFixed(1)).join(',')
    console.log(
      `npx tsx bench/profile-diff.ts --a ${join(profileDir, 'here')} --a-cpu ${cpu(results.here)} --b ${join(profileDir, 'there')} --b-cpu ${cpu(results.there)}`,
    )
  }
}

type Measured = LoadResult & { readonly cpuMicrosPerRequest: number }

/** CPU seconds a process has used, user and system (proc(5): utime, stime in clock ticks of 1/100 s). */
