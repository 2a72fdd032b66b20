/**
 * What a proxied request allocates: Gatehouse (memory store, a user route,
 * a fresh token) and the node:http + undici ceiling, each warmed up, then
 * loaded while V8's sampling heap profiler records every allocation it
 * samples, collected or not. Allocation is what the garbage collector and
 * the caches pay for later; a request's CPU grows with it beyond the time
 * spent allocating.
 *
 *   npx tsx bench/allocations.ts [--rounds N] [--duration S] [--warmup S] [--top N]
 *
 * Prints each peer's bytes per request (median over the rounds) and the
 * allocating functions where Gatehouse allocates most beyond the ceiling,
 * averaged over the rounds. BENCH_GATEHOUSE=dist runs the compiled build.
 */
import { parseArgs } from 'node:util'
import { allocatedPerRequest, type HeapProfile } from './heap-profile.js'
import { runLoad } from './load.js'
import { type PeerProcess, spawnPeer } from './peers.js'
import { difference } from './profile.js'
import { median } from './report.js'
import { CEILING_HEADERS, signedInGatehouse } from './signed-in-peer.js'

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '15' },
    connections: { type: 'string', default: '32' },
    top: { type: 'string', default: '25' },
  },
})
const settings = {
  rounds: Number(args.rounds),
  duration: Number(args.duration),
  warmup: Number(args.warmup),
  connections: Number(args.connections),
}

async function sampled(peer: PeerProcess, headers: Record<string, string>) {
  const spec = { url: `${peer.url}/api/items`, headers, connections: settings.connections }
  await runLoad('autocannon', { ...spec, duration: settings.warmup })
  await peer.profile('start', 'heap')
  const result = await runLoad('autocannon', { ...spec, duration: settings.duration })
  const profile = JSON.parse((await peer.profile('stop', 'heap'))!) as HeapProfile
  if (result.failures > 0) throw new Error(`${result.failures} of ${result.requests} requests failed`)
  return allocatedPerRequest(profile, Math.max(1, result.requests))
}

/** Each site's mean over the rounds. */
function mean(rounds: readonly Map<string, number>[]): Map<string, number> {
  const sum = new Map<string, number>()
  for (const round of rounds) for (const [site, bytes] of round) sum.set(site, (sum.get(site) ?? 0) + bytes)
  for (const [site, bytes] of sum) sum.set(site, bytes / rounds.length)
  return sum
}

const upstream = await spawnPeer(['upstream'])
const ceiling: ReturnType<typeof allocatedPerRequest>[] = []
const gatehouse: ReturnType<typeof allocatedPerRequest>[] = []
try {
  for (let round = 0; round < settings.rounds; round++) {
    const base = await spawnPeer(['ceiling', upstream.url])
    try {
      ceiling.push(await sampled(base, { ...CEILING_HEADERS }))
    } finally {
      await base.stop()
    }
    const gateway = await signedInGatehouse(upstream.url)
    try {
      gatehouse.push(await sampled(gateway.peer, gateway.headers))
    } finally {
      await gateway.stop()
    }
    console.log(
      `round ${round + 1}: ceiling ${Math.round(ceiling.at(-1)!.total)} B, Gatehouse ${Math.round(gatehouse.at(-1)!.total)} B per request`,
    )
  }
} finally {
  await upstream.stop()
}
console.log(
  `\nnode:http + undici (ceiling): ${Math.round(median(ceiling.map((r) => r.total)))} B per request`,
)
console.log(`Gatehouse (memory store): ${Math.round(median(gatehouse.map((r) => r.total)))} B per request\n`)
console.log('| Allocating function | Gatehouse − ceiling (B) | Gatehouse | Ceiling |')
console.log('| --- | --- | --- | --- |')
const rows = difference(mean(gatehouse.map((r) => r.bySite)), mean(ceiling.map((r) => r.bySite)))
for (const r of rows.slice(0, Number(args.top)))
  console.log(`| \`${r.name}\` | ${Math.round(r.delta)} | ${Math.round(r.a)} | ${Math.round(r.b)} |`)
