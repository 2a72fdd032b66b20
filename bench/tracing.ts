/**
 * What tracing costs, measured inside `npm run bench`: three Gatehouse
 * peers (memory store), loaded one after another in interleaved rounds:
 *
 * - `before`: the tree just before tracing was added (`git archive` of
 *   the parent of the first commit that touched src/tracing, or
 *   `--tracing-baseline REF`), sharing this tree's node_modules;
 * - `off`: this tree as shipped, `tracing.enabled: false`;
 * - `on 10 %`: this tree, `tracing.enabled: true`, sampling one trace in
 *   ten (`parentbased_traceidratio`, 0.1), exporting OTLP/HTTP in the
 *   SDK's default encoding (protobuf) to a receiver in this process that
 *   decodes every export, as a collector would, but after each round's
 *   loads: a collector runs elsewhere, and this one shares the machine's
 *   cores with the peer it measures.
 *
 * Reported as the median of per-round ratios, `off / before` and
 * `on / off`, like every ratio of the bench.
 *
 * Alone, without the other peers: `npx tsx bench/tracing.ts [--rounds N]
 * [--duration S] [--warmup S] [--connections N] [--tracing-baseline REF]
 * [--protocol http/json|http/protobuf] [--sampler-ratio R] [--profile-dir DIR]
 * [--together]`; `--together` loads the three peers at the same time.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startDevIdp } from '../dev/idp.js'
import { login } from '../test/helpers/login.js'
import { startOtlpReceiver } from '../test/helpers/otlp-receiver.js'
import { onFreePorts } from '../test/helpers/ports.js'
import { cpuSeconds } from './cpu.js'
import { defaultTool, type LoadResult, type LoadTool, runLoad } from './load.js'
import { type PeerProcess, spawnPeer } from './peers.js'
import { median } from './report.js'

export interface TracingSettings {
  readonly root: string
  readonly upstream: string
  readonly baseline?: string | undefined
  readonly rounds: number
  readonly duration: number
  readonly warmup: number
  readonly connections: number
  readonly tool: LoadTool
  readonly amount?: number | undefined
  /** Writes a CPU profile of each peer into this folder, one subfolder per peer (`before`, `off`, `on`). */
  readonly profileDir?: string | undefined
  /** How the `on` peer exports: `http/protobuf` (the SDK's default, and the default here) or `http/json`. */
  readonly protocol?: 'http/json' | 'http/protobuf' | undefined
  /** The `on` peer's sampler ratio: 0.1 unless a diagnostic asks for 0 (what unsampled requests cost) or 1. */
  readonly samplerRatio?: number | undefined
  /**
   * Loads the three peers at the same time, each with its own load
   * generator, instead of one after another: on a VM whose speed swings
   * from one minute to the next, peers loaded together see the same
   * machine. CPU per request is then the figure to read; throughput is
   * each peer's share of a machine they all load.
   */
  readonly together?: boolean | undefined
}

export interface TracingResult {
  /** The commit the `before` peer ran. */
  readonly baseline: string
  readonly requestsPerSecond: { readonly before: number; readonly off: number; readonly on: number }
  /** Medians of per-round ratios. */
  readonly offVsBefore: number
  readonly onVsOff: number
  /** CPU time per request (user + system), µs, medians; steadier than throughput on a busy machine. */
  readonly cpuMicrosPerRequest: { readonly before: number; readonly off: number; readonly on: number }
  /** Medians of per-round ratios of CPU per request: above 1 costs more. */
  readonly offCpuVsBefore: number
  readonly onCpuVsOff: number
  /** Spans the receiver decoded, per request the `on` peer served: about 0.1 × spans per trace. */
  readonly spansPerRequest: number
  readonly failures: number
  /** Per round: whether the measured loads all overlapped in time (`--together`), or ran one after another. */
  readonly loadedTogether: readonly boolean[]
}

const KINDS = ['before', 'off', 'on'] as const
type Kind = (typeof KINDS)[number]

/** The parent of the first commit that touched src/tracing: the tree without tracing. */
function defaultBaseline(root: string): string {
  const first = execFileSync('git', ['-C', root, 'rev-list', '--reverse', 'HEAD', '--', 'src/tracing'], {
    encoding: 'utf8',
  })
    .split('\n')
    .find(Boolean)
  if (!first) throw new Error('no commit touches src/tracing: pass --tracing-baseline')
  return execFileSync('git', ['-C', root, 'rev-parse', '--short', `${first}^`], { encoding: 'utf8' }).trim()
}

export async function measureTracing(settings: TracingSettings): Promise<TracingResult> {
  const baseline = settings.baseline ?? defaultBaseline(settings.root)
  const before = mkdtempSync(join(tmpdir(), 'gatehouse-tracing-baseline-'))
  const receiver = await startOtlpReceiver()
  try {
    execFileSync('sh', ['-c', `git -C "${settings.root}" archive "${baseline}" | tar -x -C "${before}"`])
    symlinkSync(join(settings.root, 'node_modules'), join(before, 'node_modules'))
    const clientSecret = randomBytes(24).toString('base64url')
    // The bench's own environment may carry OTEL_* settings; no peer inherits them.
    const clean = Object.fromEntries(
      Object.keys(process.env)
        .filter((k) => k.startsWith('OTEL_'))
        .map((k) => [k, undefined]),
    )
    const envOf = (kind: Kind): NodeJS.ProcessEnv =>
      kind === 'on'
        ? {
            ...clean,
            BENCH_TRACING: 'true',
            OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
            OTEL_EXPORTER_OTLP_PROTOCOL: settings.protocol ?? 'http/protobuf',
            OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
            OTEL_TRACES_SAMPLER_ARG: String(settings.samplerRatio ?? 0.1),
          }
        : { ...clean, BENCH_TRACING: 'false' }
    const results: Record<Kind, LoadResult[]> = { before: [], off: [], on: [] }
    const cpu: Record<Kind, number[]> = { before: [], off: [], on: [] }
    let onRequests = 0
    let spansReceived = 0
    const loadedTogether: boolean[] = []
    for (let round = 0; round < settings.rounds; round++) {
      const { idp, peers } = await onFreePorts(3, async (ports) => {
        const idp = await startDevIdp({
          accessTokenTtl: 900,
          clients: [
            {
              clientId: 'gatehouse-bench',
              clientSecret,
              redirectUris: ports.map((port) => `http://127.0.0.1:${port}/auth/callback`),
            },
          ],
        })
        const started: PeerProcess[] = []
        try {
          for (const [i, kind] of KINDS.entries()) {
            const tree = kind === 'before' ? before : settings.root
            started.push(
              await spawnPeer(['gatehouse', join(tree, 'bench', 'gatehouse.yaml')], {
                script: join(tree, 'bench', 'peer-process.ts'),
                ...(settings.profileDir
                  ? { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${join(settings.profileDir, kind)}`] }
                  : {}),
                env: {
                  ...envOf(kind),
                  GATEHOUSE_PORT: String(ports[i]),
                  BENCH_ISSUER: idp.issuer,
                  BENCH_CLIENT_SECRET: clientSecret,
                  BENCH_SESSION_SECRET: randomBytes(32).toString('base64url'),
                  BENCH_STORE: 'memory',
                  BENCH_UPSTREAM: settings.upstream,
                },
              }),
            )
          }
          return {
            idp,
            peers: Object.fromEntries(KINDS.map((k, i) => [k, started[i]!])) as Record<Kind, PeerProcess>,
          }
        } catch (err) {
          await Promise.all([...started.map((peer) => peer.stop()), idp.close()])
          throw err
        }
      })
      try {
        const cookies = {} as Record<Kind, string>
        for (const kind of KINDS) {
          const { jar } = await login(peers[kind].url, { user: `bench-${randomBytes(4).toString('hex')}` })
          cookies[kind] = `gatehouse=${jar.get(peers[kind].url, 'gatehouse')!}`
        }
        const load = (kind: Kind, duration: number) =>
          runLoad(settings.tool, {
            url: `${peers[kind].url}/api/items`,
            headers: { cookie: cookies[kind], 'x-csrf': '1' },
            connections: settings.connections,
            duration,
            ...(settings.amount === undefined ? {} : { amount: settings.amount }),
          })
        const warmUp = async (kind: Kind) => {
          const warm = await load(kind, settings.warmup)
          // Warm-up requests are traced too: counted, so spans per request is not inflated by them.
          if (kind === 'on') onRequests += warm.requests
        }
        const measure = async (kind: Kind) => {
          const used = cpuSeconds(peers[kind].pid)
          const startedAt = performance.now()
          const result = await load(kind, settings.duration)
          return {
            kind,
            result,
            cpu: ((cpuSeconds(peers[kind].pid) - used) * 1e6) / Math.max(1, result.requests),
            window: [startedAt, performance.now()] as const,
          }
        }
        const order = KINDS.map((_, i) => KINDS[(i + round) % KINDS.length]!)
        if (settings.warmup > 0) {
          if (settings.together) await Promise.all(KINDS.map(warmUp))
          else for (const kind of KINDS) await warmUp(kind)
        }
        const measured = settings.together ? await Promise.all(order.map(measure)) : []
        if (!settings.together) for (const kind of order) measured.push(await measure(kind))
        // Every load began before any ended: all were on the machine at once.
        loadedTogether.push(
          Math.max(...measured.map((m) => m.window[0])) < Math.min(...measured.map((m) => m.window[1])),
        )
        for (const { kind, result, cpu: micros } of measured) {
          results[kind].push(result)
          cpu[kind].push(micros)
          if (kind === 'on') onRequests += result.requests
          console.log(
            `tracing round ${round + 1}/${settings.rounds} ${kind.padEnd(7)} ${Math.round(result.requestsPerSecond)} req/s, ${Math.round(micros)} µs CPU/request${result.failures ? `, ${result.failures} failed` : ''}`,
          )
        }
      } finally {
        // Stopping flushes the `on` peer's last spans to the receiver.
        await Promise.all(Object.values(peers).map((peer) => peer.stop()))
        await idp.close()
        // Decoded now, with no load running, and dropped: a whole run's spans would not fit.
        spansReceived += receiver.spans.length
        receiver.clear()
      }
    }
    const rps = (kind: Kind) => median(results[kind].map((r) => r.requestsPerSecond))
    const ratio = (a: Kind, b: Kind) =>
      median(results[a].map((r, i) => r.requestsPerSecond / results[b][i]!.requestsPerSecond))
    return {
      baseline,
      requestsPerSecond: { before: rps('before'), off: rps('off'), on: rps('on') },
      offVsBefore: ratio('off', 'before'),
      onVsOff: ratio('on', 'off'),
      cpuMicrosPerRequest: { before: median(cpu.before), off: median(cpu.off), on: median(cpu.on) },
      offCpuVsBefore: median(cpu.off.map((c, i) => c / cpu.before[i]!)),
      onCpuVsOff: median(cpu.on.map((c, i) => c / cpu.off[i]!)),
      // The `on` peer's sign-ins add a few spans beside its loads' requests.
      spansPerRequest: onRequests === 0 ? 0 : spansReceived / onRequests,
      failures: KINDS.reduce((n, k) => n + results[k].reduce((m, r) => m + r.failures, 0), 0),
      loadedTogether,
    }
  } finally {
    await receiver.close()
    rmSync(before, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      connections: { type: 'string', default: '32' },
      'tracing-baseline': { type: 'string' },
      'profile-dir': { type: 'string' },
      protocol: { type: 'string', default: 'http/protobuf' },
      'sampler-ratio': { type: 'string', default: '0.1' },
      together: { type: 'boolean', default: false },
    },
  })
  const samplerRatio = Number(values['sampler-ratio'])
  if (!(samplerRatio >= 0 && samplerRatio <= 1)) {
    throw new Error(`--sampler-ratio: a number from 0 to 1, not ${values['sampler-ratio']}`)
  }
  if (values.protocol !== 'http/json' && values.protocol !== 'http/protobuf') {
    throw new Error(`--protocol: http/json or http/protobuf, not ${values.protocol}`)
  }
  const upstream = await spawnPeer(['upstream'])
  try {
    const result = await measureTracing({
      root: fileURLToPath(new URL('..', import.meta.url)),
      upstream: upstream.url,
      baseline: values['tracing-baseline'],
      rounds: Number(values.rounds),
      duration: Number(values.duration),
      warmup: Number(values.warmup),
      connections: Number(values.connections),
      tool: defaultTool(),
      profileDir: values['profile-dir'],
      protocol: values.protocol,
      samplerRatio,
      together: values.together,
    })
    console.log(JSON.stringify(result, null, 2))
  } finally {
    await upstream.stop()
  }
}
