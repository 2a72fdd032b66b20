/**
 * `npm run bench:dpop`: what a DPoP proof per request costs, as a ratio in
 * one run. One Gatehouse process, one session, one static upstream, two
 * routes that differ only in the proof: `/api/dpop` (an ES256 proof for
 * every request, as src/dpop/upstream.ts makes it) and `/api/bearer` (`dpop: false`, the same
 * token as a bearer token). Rounds alternate which route goes first; the
 * ratio is the median of the per-round ratios, so the machine's drift
 * cancels within a round (as `npm run bench` does). Target: at least 0.8.
 * On a machine other work shares, throughput follows that work; so the
 * gateway's own CPU time per request is also read (its
 * `gatehouse_process_cpu_seconds_total`, before and after each load), and
 * `cpuRatio` is the bearer route's CPU per request over the DPoP route's:
 * the throughput ratio a CPU-bound gateway would reach.
 *
 *   npm run bench:dpop                  5 rounds of 10 s per route
 *   npm run bench:dpop -- --smoke       a few hundred requests per route
 *
 * Options: --rounds N, --duration S, --connections N, --tool wrk|autocannon.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startDevIdp } from '../dev/idp.js'
import { login } from '../test/helpers/login.js'
import { onFreePorts } from '../test/helpers/ports.js'
import { defaultTool, type LoadResult, type LoadTool, runLoad } from './load.js'
import { spawnPeer } from './peers.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const { values: args } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string', default: '32' },
    tool: { type: 'string' },
  },
})
const smoke = args.smoke
const rounds = Number(args.rounds ?? (smoke ? 1 : 5))
const duration = Number(args.duration ?? 10)
const connections = Number(args.connections)
const tool = (smoke ? 'autocannon' : (args.tool ?? defaultTool())) as LoadTool
const CLIENT_SECRET = randomBytes(24).toString('base64url')
const ROUTES = ['/api/dpop', '/api/bearer'] as const

const stops: (() => Promise<void>)[] = []
try {
  const result = await main()
  console.log(JSON.stringify(result, null, 2))
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
}

async function main() {
  const upstream = await spawnPeer(['upstream'])
  stops.push(() => upstream.stop())
  const { gateway } = await onFreePorts(1, async ([port]) => {
    const idp = await startDevIdp({
      // Longer than the run: no refresh inside a round.
      accessTokenTtl: 3_600,
      clients: [
        {
          clientId: 'gatehouse-bench',
          clientSecret: CLIENT_SECRET,
          redirectUris: [`http://127.0.0.1:${port}/auth/callback`],
        },
      ],
    })
    stops.push(() => idp.close())
    const gateway = await spawnPeer(['gatehouse', join(root, 'bench', 'gatehouse-dpop.yaml')], {
      env: {
        GATEHOUSE_PORT: String(port),
        BENCH_ISSUER: idp.issuer,
        BENCH_CLIENT_SECRET: CLIENT_SECRET,
        BENCH_SESSION_SECRET: randomBytes(32).toString('base64url'),
        BENCH_UPSTREAM: upstream.url,
      },
    })
    stops.push(() => gateway.stop())
    return { gateway }
  })
  const signedIn = await login(gateway.url, { user: 'bench-dpop' })
  const cookie = `gatehouse=${signedIn.jar.get(gateway.url, 'gatehouse')}`
  const headers = { cookie, 'x-csrf': '1' }
  const cpuSeconds = async () => {
    const text = await (await fetch(gateway.metricsUrl!)).text()
    const line = /^gatehouse_process_cpu_seconds_total (\S+)$/m.exec(text)
    if (!line) throw new Error('the gateway reports no gatehouse_process_cpu_seconds_total')
    return Number(line[1])
  }
  const cpu: Record<(typeof ROUTES)[number], number[]> = { '/api/dpop': [], '/api/bearer': [] }
  const run = (path: string, seconds: number) =>
    runLoad(tool, {
      url: `${gateway.url}${path}`,
      headers,
      connections,
      duration: seconds,
      ...(smoke ? { amount: 300 } : {}),
    })
  const load = async (path: (typeof ROUTES)[number], seconds: number) => {
    const before = await cpuSeconds()
    const result = await run(path, seconds)
    cpu[path].push(((await cpuSeconds()) - before) / result.requests)
    return result
  }
  if (!smoke) for (const path of ROUTES) await load(path, 3)
  cpu['/api/dpop'].length = 0
  cpu['/api/bearer'].length = 0
  const results: Record<(typeof ROUTES)[number], LoadResult[]> = { '/api/dpop': [], '/api/bearer': [] }
  for (let round = 0; round < rounds; round++) {
    const order: readonly (typeof ROUTES)[number][] = round % 2 === 0 ? ROUTES : [...ROUTES].reverse()
    for (const path of order) {
      const result = await load(path, duration)
      if (result.failures > 0) throw new Error(`${path}: ${result.failures} requests failed`)
      results[path].push(result)
      console.log(
        `round ${round + 1}/${rounds} ${path.padEnd(12)} ${Math.round(result.requestsPerSecond)} req/s, p99 ${result.p99.toFixed(2)} ms, ${(cpu[path].at(-1)! * 1e6).toFixed(0)} µs CPU per request`,
      )
    }
  }
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b)
    const mid = Math.floor(sorted.length / 2)
    return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  }
  const dpop = median(results['/api/dpop'].map((r) => r.requestsPerSecond))
  const bearer = median(results['/api/bearer'].map((r) => r.requestsPerSecond))
  const ratios = results['/api/dpop'].map(
    (r, i) => r.requestsPerSecond / results['/api/bearer'][i]!.requestsPerSecond,
  )
  return {
    date: new Date().toISOString(),
    node: process.version,
    tool,
    connections,
    rounds,
    durationSeconds: smoke ? 0 : duration,
    dpopRequestsPerSecond: Math.round(dpop),
    bearerRequestsPerSecond: Math.round(bearer),
    dpopP99: median(results['/api/dpop'].map((r) => r.p99)),
    bearerP99: median(results['/api/bearer'].map((r) => r.p99)),
    ratios: ratios.map((r) => Number(r.toFixed(2))),
    dpopCpuMicros: Math.round(median(cpu['/api/dpop']) * 1e6),
    bearerCpuMicros: Math.round(median(cpu['/api/bearer']) * 1e6),
    cpuRatio: Number(median(cpu['/api/dpop'].map((d, i) => cpu['/api/bearer'][i]! / d)).toFixed(2)),
    ratio: Number(median(ratios).toFixed(2)),
    target: 0.8,
  }
}
