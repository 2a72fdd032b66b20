/**
 * Why two ways of loading the same peers disagree: the node:http + undici
 * ceiling and Gatehouse (memory store, a user route, a fresh token), each
 * loaded alone, as `npm run bench`
 * loads its peers one after another, and then both at once, as
 * `bench/versus.ts ceiling` does. For each, user and system CPU time per
 * request, from /proc: whether a gap between the two is Gatehouse's own
 * code (user) or the kernel's work on its sockets (system), and whether it
 * changes with the load around it.
 *
 *   npx tsx bench/alone-together.ts [--rounds N] [--duration S] [--warmup S] [--connections N]
 *
 * Prints one line per peer and way per round, then the medians as JSON.
 * Set BENCH_GATEHOUSE=dist, after `npm run build`, to load the compiled build.
 */
import { parseArgs } from 'node:util'
import { type CpuTimes, cpuTimes } from './cpu.js'
import { defaultTool, runLoad } from './load.js'
import { spawnPeer } from './peers.js'
import { median } from './report.js'
import { CEILING_HEADERS, signedInGatehouse } from './signed-in-peer.js'

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '20' },
    connections: { type: 'string', default: '32' },
  },
})
const settings = {
  rounds: Number(args.rounds),
  duration: Number(args.duration),
  warmup: Number(args.warmup),
  connections: Number(args.connections),
  tool: defaultTool(),
}

interface Target {
  readonly name: 'ceiling' | 'gatehouse'
  readonly pid: number
  readonly url: string
  readonly headers: Record<string, string>
}
interface PerRequest {
  readonly user: number
  readonly system: number
  readonly requestsPerSecond: number
}
type Way = 'alone' | 'together'

const results: Record<Way, Record<Target['name'], PerRequest[]>> = {
  alone: { ceiling: [], gatehouse: [] },
  together: { ceiling: [], gatehouse: [] },
}

function load(target: Target, duration: number) {
  return runLoad(settings.tool, {
    url: `${target.url}/api/items`,
    headers: target.headers,
    connections: settings.connections,
    duration,
  })
}

async function measured(target: Target): Promise<PerRequest> {
  const before = cpuTimes(target.pid)
  const result = await load(target, settings.duration)
  return perRequest(before, cpuTimes(target.pid), result.requests, result.failures)
}

function perRequest(before: CpuTimes, after: CpuTimes, requests: number, failures: number): PerRequest {
  if (failures > 0) throw new Error(`${failures} of ${requests} requests failed`)
  const n = Math.max(1, requests)
  return {
    user: ((after.user - before.user) * 1e6) / n,
    system: ((after.system - before.system) * 1e6) / n,
    requestsPerSecond: requests / settings.duration,
  }
}

function report(way: Way, name: string, r: PerRequest): void {
  console.log(
    `${way.padEnd(8)} ${name.padEnd(9)} user ${r.user.toFixed(1)} µs, system ${r.system.toFixed(1)} µs per request, ${Math.round(r.requestsPerSecond)} req/s`,
  )
}

const upstream = await spawnPeer(['upstream'])
try {
  const ceilingPeer = await spawnPeer(['ceiling', upstream.url])
  const signedIn = await signedInGatehouse(upstream.url)
  try {
    const targets: Target[] = [
      { name: 'ceiling', pid: ceilingPeer.pid, url: ceilingPeer.url, headers: { ...CEILING_HEADERS } },
      { name: 'gatehouse', pid: signedIn.peer.pid, url: signedIn.peer.url, headers: signedIn.headers },
    ]
    await Promise.all(targets.map((target) => load(target, settings.warmup)))
    for (let round = 0; round < settings.rounds; round++) {
      for (const target of targets) {
        const r = await measured(target)
        results.alone[target.name].push(r)
        report('alone', target.name, r)
      }
      const together = await Promise.all(targets.map(measured))
      targets.forEach((target, i) => {
        results.together[target.name].push(together[i]!)
        report('together', target.name, together[i]!)
      })
    }
  } finally {
    await ceilingPeer.stop()
    await signedIn.stop()
  }
} finally {
  await upstream.stop()
}

const medians = (runs: PerRequest[]) => ({
  user: median(runs.map((r) => r.user)),
  system: median(runs.map((r) => r.system)),
  requestsPerSecond: median(runs.map((r) => r.requestsPerSecond)),
})
console.log(
  JSON.stringify(
    {
      tool: settings.tool,
      rounds: settings.rounds,
      alone: { ceiling: medians(results.alone.ceiling), gatehouse: medians(results.alone.gatehouse) },
      together: {
        ceiling: medians(results.together.ceiling),
        gatehouse: medians(results.together.gatehouse),
      },
    },
    null,
    2,
  ),
)
