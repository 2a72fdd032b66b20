/**
 * Where a proxied request's CPU goes, by component: Gatehouse (memory store,
 * a user route, a fresh token) and the node:http + undici ceiling, each
 * warmed up, then loaded while V8's CPU profiler (what `--cpu-prof` runs)
 * samples it every 100 µs. Each function's own time is put in the component
 * its file belongs to; a component's µs per request is its share of the
 * busy samples times the process's CPU per request over the same load
 * (the profiler's own samples left out of the share, though not out of
 * the CPU time, which they inflate by a few per cent).
 *
 *   npx tsx bench/components.ts [--rounds N] [--duration S] [--warmup S] [--out DIR]
 *
 * Prints one Markdown table per peer, the medians over the rounds.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { componentOf } from './component-of.js'
import { cpuSeconds } from './cpu.js'
import { defaultTool, runLoad } from './load.js'
import { type PeerProcess, spawnPeer } from './peers.js'
import { median } from './report.js'
import { CEILING_HEADERS, signedInGatehouse } from './signed-in-peer.js'

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '15' },
    connections: { type: 'string', default: '32' },
    out: { type: 'string' },
  },
})
const settings = {
  rounds: Number(args.rounds),
  duration: Number(args.duration),
  warmup: Number(args.warmup),
  connections: Number(args.connections),
}

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string }
}
interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

function attribute(profile: CpuProfile): Map<string, number> {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]))
  const memo = new Map<number, string>()
  const shares = new Map<string, number>()
  let busy = 0
  profile.samples.forEach((id, i) => {
    const frame = byNode.get(id)!.callFrame
    // The profiler's own work in the process is not the request's.
    if (frame.functionName === '(idle)' || frame.url === 'node:inspector') return
    let component = memo.get(id)
    if (component === undefined) {
      component = componentOf(frame.url, frame.functionName)
      memo.set(id, component)
    }
    const delta = profile.timeDeltas[i] ?? 0
    shares.set(component, (shares.get(component) ?? 0) + delta)
    busy += delta
  })
  for (const [name, time] of shares) shares.set(name, time / busy)
  return shares
}

const stops: (() => Promise<void>)[] = []
const results = new Map<string, { cpu: number[]; shares: Map<string, number>[] }>([
  ['node:http + undici (ceiling)', { cpu: [], shares: [] }],
  ['Gatehouse (memory store)', { cpu: [], shares: [] }],
])

// The load generator `npm run bench` uses (wrk when installed), so the
// profile is of the load the targets are measured under: under autocannon,
// a Node process that takes more of the machine, the gap to the ceiling
// came out at half what it is under wrk.
const tool = defaultTool()

async function profiled(peer: PeerProcess, headers: Record<string, string>) {
  const spec = { url: `${peer.url}/api/items`, headers, connections: settings.connections }
  await runLoad(tool, { ...spec, duration: settings.warmup })
  await peer.profile('start')
  const before = cpuSeconds(peer.pid)
  const result = await runLoad(tool, { ...spec, duration: settings.duration })
  const cpu = ((cpuSeconds(peer.pid) - before) * 1e6) / Math.max(1, result.requests)
  const profile = JSON.parse((await peer.profile('stop'))!) as CpuProfile
  if (result.failures > 0) throw new Error(`${result.failures} of ${result.requests} requests failed`)
  return { cpu, profile }
}

try {
  const upstream = await spawnPeer(['upstream'])
  stops.push(() => upstream.stop())
  for (let round = 0; round < settings.rounds; round++) {
    const ceiling = await spawnPeer(['ceiling', upstream.url])
    const base = await profiled(ceiling, { ...CEILING_HEADERS })
    await ceiling.stop()
    const gatehouse = await signedInGatehouse(upstream.url)
    const got = await profiled(gatehouse.peer, gatehouse.headers)
    await gatehouse.stop()
    for (const [name, run] of [
      ['node:http + undici (ceiling)', base],
      ['Gatehouse (memory store)', got],
    ] as const) {
      results.get(name)!.cpu.push(run.cpu)
      results.get(name)!.shares.push(attribute(run.profile))
      if (args.out) {
        mkdirSync(args.out, { recursive: true })
        writeFileSync(
          join(args.out, `${name.replace(/\W+/g, '-')}-${round}.cpuprofile`),
          JSON.stringify(run.profile),
        )
      }
    }
    console.log(
      `round ${round + 1}: ceiling ${Math.round(base.cpu)} µs, Gatehouse ${Math.round(got.cpu)} µs CPU per request`,
    )
  }
  for (const [name, { cpu, shares }] of results) {
    const perRequest = median(cpu)
    console.log(`\n${name}: ${Math.round(perRequest)} µs CPU per request (median of ${cpu.length} rounds)\n`)
    console.log('| Component | µs per request | Share |')
    console.log('| --- | --- | --- |')
    const names = [...new Set(shares.flatMap((s) => [...s.keys()]))]
    const rows = names
      .map((component) => ({ component, share: median(shares.map((s) => s.get(component) ?? 0)) }))
      .sort((a, b) => b.share - a.share)
    for (const { component, share } of rows)
      console.log(`| ${component} | ${(share * perRequest).toFixed(1)} | ${(share * 100).toFixed(1)} % |`)
  }
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
}
