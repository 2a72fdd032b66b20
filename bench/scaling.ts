/**
 * How Gatehouse's cost per request grows with the sessions in use at once
 * and with the routes configured, against the node:http + undici ceiling
 * in the same rounds:
 *
 * - 1, 100 and 10,000 sessions, one route: the load takes the sessions'
 *   cookies in turn, so each request reads another session (and, past the
 *   cache of opened cookies, opens another cookie);
 * - 1, 10 and 50 routes, one session: every request goes to the route
 *   registered last, so a lookup that walks the routes would show.
 *
 *   npx tsx bench/scaling.ts [--store memory|redis] [--rounds N]
 *       [--duration S] [--warmup S] [--connections N]
 *
 * Each round starts every gateway afresh (memory store unless `--store
 * redis`), signs one session in, clones it into as many as its case needs
 * (bench/peer-process.ts), warms each peer up and measures it, each case
 * right after a fresh ceiling of its own; reported are
 * the medians of requests/s and of CPU per request (the peer process's own
 * CPU time over the load ÷ its requests), and of the per-round ratios to
 * the ceiling.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startDevIdp } from '../dev/idp.js'
import { login } from '../test/helpers/login.js'
import { onFreePorts } from '../test/helpers/ports.js'
import { startRedis } from '../test/helpers/redis.js'
import { cpuSeconds } from './cpu.js'
import { runLoad } from './load.js'
import { type PeerProcess, spawnPeer } from './peers.js'
import { median } from './report.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const { values: args } = parseArgs({
  options: {
    store: { type: 'string', default: 'memory' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '15' },
    connections: { type: 'string', default: '32' },
    cases: { type: 'string' },
  },
})
const settings = {
  rounds: Number(args.rounds),
  duration: Number(args.duration),
  warmup: Number(args.warmup),
  connections: Number(args.connections),
}

interface Case {
  readonly name: string
  readonly sessions: number
  readonly routes: number
}
const ALL: readonly Case[] = [
  { name: '1 session, 1 route', sessions: 1, routes: 1 },
  { name: '100 sessions', sessions: 100, routes: 1 },
  { name: '10,000 sessions', sessions: 10_000, routes: 1 },
  { name: '10 routes', sessions: 1, routes: 10 },
  { name: '50 routes', sessions: 1, routes: 50 },
]
const cases = args.cases ? ALL.filter((c) => args.cases!.split(',').includes(String(ALL.indexOf(c)))) : ALL

const CLIENT_SECRET = randomBytes(24).toString('base64url')
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-scaling-'))
const stops: (() => Promise<void>)[] = [async () => rmSync(dir, { recursive: true, force: true })]

/** bench/gatehouse.yaml with `count` routes, `/api` the last registered. */
function configWithRoutes(count: number): string {
  const base = readFileSync(join(root, 'bench', 'gatehouse.yaml'), 'utf8')
  const routes = [
    ...Array.from(
      { length: count - 1 },
      (_, i) => `  - path: /other-${i}\n    upstream: \${BENCH_UPSTREAM}\n    token: user\n`,
    ),
    '  - path: /api\n    upstream: ${BENCH_UPSTREAM}\n    token: user\n',
  ].join('')
  const file = join(dir, `gatehouse-${count}-routes.yaml`)
  writeFileSync(file, base.replace(/routes:\n(?: {2}.*\n| {4}.*\n)+/, `routes:\n${routes}`))
  return file
}

interface Row {
  readonly rps: number[]
  readonly cpu: number[]
  readonly rpsRatio: number[]
  readonly cpuRatio: number[]
}

try {
  const redis = args.store === 'redis' ? await startRedis() : undefined
  if (redis) stops.push(() => redis.stop())
  const upstream = await spawnPeer(['upstream'])
  stops.push(() => upstream.stop())
  const files = new Map(cases.map((c) => [c.routes, configWithRoutes(c.routes)]))
  const rows = new Map<string, Row>(
    ['ceiling', ...cases.map((c) => c.name)].map((n) => [
      n,
      { rps: [], cpu: [], rpsRatio: [], cpuRatio: [] },
    ]),
  )
  const measure = async (peer: PeerProcess, cookies: readonly string[]) => {
    const spec = {
      url: `${peer.url}/api/items`,
      headers: { cookie: cookies[0]!, 'x-csrf': '1' },
      connections: settings.connections,
      ...(cookies.length > 1 ? { cookies } : {}),
    }
    await runLoad('autocannon', { ...spec, duration: settings.warmup })
    const before = cpuSeconds(peer.pid)
    const result = await runLoad('autocannon', { ...spec, duration: settings.duration })
    if (result.failures > 0) throw new Error(`${result.failures} of ${result.requests} requests failed`)
    return {
      rps: result.requestsPerSecond,
      cpu: ((cpuSeconds(peer.pid) - before) * 1e6) / Math.max(1, result.requests),
    }
  }
  for (let round = 0; round < settings.rounds; round++) {
    for (const c of cases) {
      // The ceiling right before each case, so every ratio pairs two loads
      // a minute apart at most, whatever else the machine is doing.
      const ceiling = await spawnPeer(['ceiling', upstream.url])
      const base = await measure(ceiling, [`gatehouse=${'a'.repeat(160)}`])
      await ceiling.stop()
      rows.get('ceiling')!.rps.push(base.rps)
      rows.get('ceiling')!.cpu.push(base.cpu)
      const { gateway, idp } = await onFreePorts(1, async ([port]) => {
        const idp = await startDevIdp({
          accessTokenTtl: 3600,
          clients: [
            {
              clientId: 'gatehouse-bench',
              clientSecret: CLIENT_SECRET,
              redirectUris: [`http://127.0.0.1:${port}/auth/callback`],
            },
          ],
        })
        try {
          const gateway = await spawnPeer(['gatehouse', files.get(c.routes)!], {
            env: {
              GATEHOUSE_PORT: String(port),
              BENCH_ISSUER: idp.issuer,
              BENCH_CLIENT_SECRET: CLIENT_SECRET,
              BENCH_SESSION_SECRET: randomBytes(32).toString('base64url'),
              BENCH_STORE: redis ? redis.url : 'memory',
              BENCH_KEY_PREFIX: redis ? redis.prefix : 'gatehouse-bench:',
              BENCH_UPSTREAM: upstream.url,
            },
          })
          return { gateway, idp }
        } catch (err) {
          await idp.close()
          throw err
        }
      })
      try {
        const signedIn = await login(gateway.url, { user: `bench-${randomBytes(4).toString('hex')}` })
        const first = `gatehouse=${signedIn.jar.get(gateway.url, 'gatehouse')}`
        const cookies = [first, ...(c.sessions > 1 ? await gateway.clone(first, c.sessions - 1) : [])]
        const got = await measure(gateway, cookies)
        const row = rows.get(c.name)!
        row.rps.push(got.rps)
        row.cpu.push(got.cpu)
        row.rpsRatio.push(got.rps / base.rps)
        row.cpuRatio.push(got.cpu / base.cpu)
        console.log(
          `round ${round + 1} ${c.name}: ${Math.round(got.rps)} req/s, ${Math.round(got.cpu)} µs CPU/request (${(got.rps / base.rps).toFixed(2)}× the ceiling's req/s, ${(got.cpu / base.cpu).toFixed(2)}× its CPU)`,
        )
      } finally {
        await gateway.stop()
        await idp.close()
      }
    }
  }
  console.log(
    `\n${args.store} store, autocannon -c${settings.connections}, ${settings.rounds} rounds of ${settings.duration} s after ${settings.warmup} s of warm-up; medians\n`,
  )
  console.log('| Case | Requests/s | CPU per request (µs) | Requests/s vs ceiling | CPU vs ceiling |')
  console.log('| --- | --- | --- | --- | --- |')
  for (const [name, row] of rows) {
    const ratio = (values: number[]) => (values.length ? `${median(values).toFixed(2)}×` : '—')
    console.log(
      `| ${name} | ${Math.round(median(row.rps)).toLocaleString('en-US')} | ${Math.round(median(row.cpu))} | ${ratio(row.rpsRatio)} | ${ratio(row.cpuRatio)} |`,
    )
  }
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
}
