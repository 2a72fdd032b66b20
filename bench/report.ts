import type { GatehouseTree } from './gatehouse-tree.js'
import type { LoadResult } from './load.js'
import type { StormResult } from './storm.js'
import type { TracingResult } from './tracing.js'

export const PEERS = [
  'direct upstream',
  'node-http-undici',
  'fastify-http-proxy',
  'express-bff',
  'gatehouse-memory',
  'gatehouse-redis',
  'gatehouse-redis-cluster',
] as const
export type PeerName = (typeof PEERS)[number]

/** One peer's load in one round, and the CPU time its own process spent on it. */
export interface PeerRound extends LoadResult {
  /** The peer process's CPU time (user + system, from /proc) over the load, ÷ requests, µs. */
  readonly cpuMicrosPerRequest: number
}

export interface PeerSummary {
  readonly peer: PeerName
  /** Medians over the rounds. */
  readonly requestsPerSecond: number
  readonly p50: number
  readonly p99: number
  readonly cpuMicrosPerRequest: number
  readonly failures: number
  readonly rounds: readonly PeerRound[]
}

export interface Target {
  readonly id: number
  readonly name: string
  readonly measured: string
  readonly goal: string
  readonly pass: boolean
}

export interface BenchReport {
  readonly date: string
  readonly command: string
  readonly machine: {
    readonly cpus: number
    readonly cpuModel: string
    readonly node: string
    readonly platform: string
    readonly memoryGiB: number
  }
  readonly settings: {
    readonly tool: string
    readonly connections: number
    readonly durationSeconds: number
    /** Seconds of load each peer took, unmeasured, before each round's measurements. */
    readonly warmupSeconds: number
    readonly rounds: number
    readonly smoke: boolean
    /** The Gatehouse peers ran the compiled build (`dist`) or the sources through tsx (`src`); absent before 2026-12-04: `src`. */
    readonly gatehouse?: GatehouseTree
  }
  readonly peers: readonly PeerSummary[]
  readonly storms: Readonly<Record<string, StormResult>>
  readonly memory: {
    readonly sessions: number
    readonly bytesPerSession: number
    readonly sizeAfterOverflow: number
  }
  readonly cookie: { readonly name: string; readonly bytes: number; readonly setCookieBytes: number }
  /** Gatehouse with tracing off against the tree before tracing, and on (10 % sampled) against off. */
  readonly tracing: TracingResult
  readonly targets: readonly Target[]
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export function summarise(peer: PeerName, rounds: readonly PeerRound[]): PeerSummary {
  return {
    peer,
    requestsPerSecond: median(rounds.map((r) => r.requestsPerSecond)),
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
    cpuMicrosPerRequest: median(rounds.map((r) => r.cpuMicrosPerRequest)),
    failures: rounds.reduce((sum, r) => sum + r.failures, 0),
    rounds,
  }
}

/**
 * A throughput ratio as the median of per-round ratios: both peers of a
 * round ran back to back, so the machine's drift cancels within a round.
 */
export function pairedRatio(a: PeerSummary, b: PeerSummary): number {
  return median(a.rounds.map((r, i) => r.requestsPerSecond / (b.rounds[i]?.requestsPerSecond ?? Number.NaN)))
}

/** CPU per request of `a` over `b`, as the median of per-round ratios. */
export function pairedCpuRatio(a: PeerSummary, b: PeerSummary): number {
  return median(
    a.rounds.map((r, i) => r.cpuMicrosPerRequest / (b.rounds[i]?.cpuMicrosPerRequest ?? Number.NaN)),
  )
}

/** p99 of `a` minus that of `b`, ms, as the median of per-round differences. */
export function pairedP99Gap(a: PeerSummary, b: PeerSummary): number {
  return median(a.rounds.map((r, i) => r.p99 - (b.rounds[i]?.p99 ?? Number.NaN)))
}

export function targets(
  peers: ReadonlyMap<PeerName, PeerSummary>,
  storms: Readonly<Record<string, StormResult>>,
  memory: BenchReport['memory'],
  cookie: BenchReport['cookie'],
  tracing: TracingResult,
): Target[] {
  const get = (name: PeerName) => peers.get(name)!
  const memoryPeer = get('gatehouse-memory')
  const bare = get('fastify-http-proxy')
  const vsBare = pairedRatio(memoryPeer, bare)
  const vsExpress = pairedRatio(memoryPeer, get('express-bff'))
  const redisVsMemory = pairedRatio(get('gatehouse-redis'), memoryPeer)
  const ceiling = get('node-http-undici')
  const vsCeiling = pairedRatio(memoryPeer, ceiling)
  const redisVsCeiling = pairedRatio(get('gatehouse-redis'), ceiling)
  const cpuVsCeiling = pairedCpuRatio(memoryPeer, ceiling)
  const p99Gap = pairedP99Gap(memoryPeer, ceiling)
  const stormList = Object.entries(storms)
  const x = (n: number) => `${n.toFixed(2)}×`
  return [
    {
      id: 1,
      name: 'Gatehouse (memory) vs bare @fastify/http-proxy',
      measured: x(vsBare),
      goal: '≥ 1.00×',
      pass: vsBare >= 1,
    },
    {
      id: 2,
      name: 'Gatehouse (memory) vs Express BFF',
      measured: x(vsExpress),
      goal: '≥ 3.00×',
      pass: vsExpress >= 3,
    },
    {
      id: 3,
      name: 'Gatehouse Redis vs memory store',
      measured: x(redisVsMemory),
      goal: '≥ 0.85×',
      pass: redisVsMemory >= 0.85,
    },
    {
      id: 4,
      name: 'p99 of Gatehouse (memory) vs bare proxy',
      measured: `${memoryPeer.p99.toFixed(2)} ms vs ${bare.p99.toFixed(2)} ms`,
      goal: '≤ bare + 1 ms',
      pass: memoryPeer.p99 <= bare.p99 + 1,
    },
    {
      id: 5,
      name: 'Refresh storm',
      measured: stormList
        .map(([name, s]) => `${name}: ${s.refreshGrants} refresh, ${s.succeeded}/${s.requests} ok`)
        .join('; '),
      goal: 'exactly 1 refresh, all succeed',
      pass:
        stormList.length > 0 &&
        stormList.every(
          ([, s]) => s.refreshGrants === 1 && s.refreshReplays === 0 && s.succeeded === s.requests,
        ),
    },
    {
      id: 6,
      name: 'Memory per session (tokens excluded)',
      measured: `${memory.bytesPerSession} B; ${memory.sizeAfterOverflow} held after ${memory.sessions * 1.5} created with a cap of ${memory.sessions}`,
      goal: '≤ 2048 B, bounded',
      pass: memory.bytesPerSession <= 2048 && memory.sizeAfterOverflow <= memory.sessions,
    },
    {
      id: 7,
      name: 'Session cookie size',
      measured: `${cookie.bytes} B`,
      goal: '≤ 200 B',
      pass: cookie.bytes <= 200,
    },
    {
      id: 8,
      name: `Tracing off vs the tree before tracing (${tracing.baseline})`,
      measured: `${x(tracing.offVsBefore)} (CPU per request ${x(tracing.offCpuVsBefore)})`,
      // Two starts of the same code differ by a few per cent here: "nothing
      // measurable" is within that noise.
      goal: '≥ 0.97×',
      pass: tracing.offVsBefore >= 0.97,
    },
    {
      id: 9,
      name: 'Tracing on, 10 % sampled, vs off',
      measured: `${x(tracing.onVsOff)} (CPU per request ${x(tracing.onCpuVsOff)}; ${tracing.spansPerRequest.toFixed(2)} spans exported per request)`,
      goal: '≥ 0.90×',
      pass: tracing.onVsOff >= 0.9,
    },
    {
      id: 10,
      name: 'Gatehouse (memory) vs the node:http + undici ceiling',
      measured: x(vsCeiling),
      goal: '≥ 0.85×',
      pass: vsCeiling >= 0.85,
    },
    {
      id: 11,
      name: 'Gatehouse Redis (local cache warm) vs the ceiling',
      measured: x(redisVsCeiling),
      goal: '≥ 0.80×',
      pass: redisVsCeiling >= 0.8,
    },
    {
      id: 12,
      name: 'p99 of Gatehouse (memory) vs the ceiling',
      measured: `${memoryPeer.p99.toFixed(2)} ms vs ${ceiling.p99.toFixed(2)} ms (per-round gap ${p99Gap.toFixed(2)} ms)`,
      goal: '≤ ceiling + 1 ms',
      pass: p99Gap <= 1,
    },
    {
      id: 13,
      name: 'CPU per request of Gatehouse (memory) vs the ceiling',
      measured: `${x(cpuVsCeiling)} (${Math.round(memoryPeer.cpuMicrosPerRequest)} vs ${Math.round(ceiling.cpuMicrosPerRequest)} µs)`,
      goal: '≤ 1.20×',
      pass: cpuVsCeiling <= 1.2,
    },
  ]
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

/**
 * Gatehouse on a 3-master Redis Cluster against one Redis, as a paired
 * ratio: a figure, not a target (the cluster spreads load over nodes this
 * single machine runs side by side, and turns the local session cache off).
 */
export function clusterVsSingle(report: BenchReport): string {
  const get = (name: PeerName) => report.peers.find((p) => p.peer === name)
  const cluster = get('gatehouse-redis-cluster')
  const single = get('gatehouse-redis')
  return cluster && single
    ? `Redis Cluster (3 masters, local session cache off) vs one Redis: ${pairedRatio(cluster, single).toFixed(2)}× the requests/s.`
    : ''
}

/** The report as Markdown: what `docs/performance.md` shows between its markers. */
export function markdown(report: BenchReport): string {
  const { machine, settings } = report
  const ms = (n: number) => n.toFixed(2)
  const peers = table(
    ['Peer', 'Requests/s', 'p50 (ms)', 'p99 (ms)', 'CPU per request (µs)', 'Failed'],
    report.peers.map((p) => [
      p.peer,
      Math.round(p.requestsPerSecond).toLocaleString('en-US'),
      ms(p.p50),
      ms(p.p99),
      String(Math.round(p.cpuMicrosPerRequest)),
      String(p.failures),
    ]),
  )
  const targetTable = table(
    ['#', 'Target', 'Measured', 'Goal', 'Result'],
    report.targets.map((t) => [String(t.id), t.name, t.measured, t.goal, t.pass ? 'PASS' : 'FAIL']),
  )
  const storms = table(
    ['Store', 'Requests', 'Succeeded', 'Refresh grants', 'Replays', 'Last answer (ms)', 'IdP refresh (ms)'],
    Object.entries(report.storms).map(([name, s]) => [
      name,
      String(s.requests),
      String(s.succeeded),
      String(s.refreshGrants),
      String(s.refreshReplays),
      ms(s.lastCompletedMs),
      ms(s.idpRefreshMs),
    ]),
  )
  return [
    `Run on ${report.date.slice(0, 10)}: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node} (${machine.platform}).`,
    `Load: ${settings.tool}, ${settings.connections} connections, ${settings.rounds} interleaved rounds of ${settings.durationSeconds} s per peer after ${settings.warmupSeconds} s of warm-up each, each round on freshly started peer processes${settings.gatehouse === 'dist' ? ', Gatehouse from its compiled build (what `gatehouse start` runs)' : ', Gatehouse from its TypeScript sources through tsx'}; figures are medians over the rounds, ratios the median of per-round ratios. CPU per request is the peer process's own CPU time (user + system) over the load, divided by the requests it answered.`,
    '',
    peers,
    '',
    clusterVsSingle(report),
    '',
    targetTable,
    '',
    'Refresh storm (concurrent calls on an expired access token, one connection each):',
    '',
    storms,
    '',
    `Tracing (memory store, ${report.tracing.failures} failed): before ${Math.round(report.tracing.requestsPerSecond.before)} req/s (${report.tracing.baseline}), off ${Math.round(report.tracing.requestsPerSecond.off)}, on with 10 % sampling ${Math.round(report.tracing.requestsPerSecond.on)}; CPU per request ${Math.round(report.tracing.cpuMicrosPerRequest.before)}, ${Math.round(report.tracing.cpuMicrosPerRequest.off)} and ${Math.round(report.tracing.cpuMicrosPerRequest.on)} µs; ${report.tracing.spansPerRequest.toFixed(2)} spans exported per request.`,
    '',
    `Memory store: ${report.memory.bytesPerSession} bytes per session over ${report.memory.sessions.toLocaleString('en-US')} sessions, token strings excluded. ` +
      `Session cookie: \`${report.cookie.name}=…\` is ${report.cookie.bytes} bytes (the whole \`Set-Cookie\` line: ${report.cookie.setCookieBytes}).`,
    '',
    `Reproduce: \`${report.command}\``,
  ].join('\n')
}

/** The console view: the peer table and each target with PASS or FAIL. */
export function text(report: BenchReport): string {
  const rows = report.peers.map(
    (p) =>
      `${p.peer.padEnd(24)} ${Math.round(p.requestsPerSecond).toString().padStart(8)} req/s   p50 ${p.p50.toFixed(2).padStart(6)} ms   p99 ${p.p99.toFixed(2).padStart(6)} ms   CPU ${Math.round(p.cpuMicrosPerRequest).toString().padStart(5)} µs/request   failed ${p.failures}`,
  )
  const checks = report.targets.map(
    (t) => `${t.pass ? 'PASS' : 'FAIL'}  ${t.id}. ${t.name}: ${t.measured} (goal ${t.goal})`,
  )
  const { machine } = report
  return [
    `${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, ${report.settings.tool} -c${report.settings.connections}, ${report.settings.rounds} × ${report.settings.durationSeconds} s`,
    ...rows,
    clusterVsSingle(report),
    ...checks,
  ].join('\n')
}
