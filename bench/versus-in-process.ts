/**
 * This tree's Gatehouse against another commit's, both in this one process:
 * CPU time per whole request (guard, session, token, proxy to a real
 * upstream), measured with `app.inject` in interleaved batches, so the two
 * share the heap, the JIT's conditions and whatever else the machine runs.
 * Less noisy than `bench/versus.ts` on a busy machine; no sockets between
 * the client and the gateway, so it counts only the gateway's own work.
 *
 *   npx tsx bench/versus-in-process.ts <git-ref> [--store redis|memory]
 *       [--local-cache N] [--batches N]
 *
 * Each gateway signs a user in through the dev IdP over a real socket
 * first. Prints the median CPU microseconds per request of each and the
 * median of per-batch ratios (this tree / the other).
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import type { FastifyInstance } from 'fastify'
import { startDevIdp } from '../dev/idp.js'
import type { GatehouseConfig } from '../src/config/types.js'
import { login } from '../test/helpers/login.js'
import { onFreePort } from '../test/helpers/ports.js'
import { startRedis } from '../test/helpers/redis.js'
import { spawnPeer } from './peers.js'
import { median } from './report.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    store: { type: 'string', default: 'redis' },
    'local-cache': { type: 'string', default: '10000' },
    batches: { type: 'string', default: '21' },
  },
})
const ref = positionals[0]
if (!ref) {
  console.error('usage: npx tsx bench/versus-in-process.ts <git-ref> [--store redis|memory] ...')
  process.exit(2)
}

/** What each tree provides: its gateway builder and its test config, which resolves a config as users write it. */
interface Tree {
  buildGateway(config: GatehouseConfig): Promise<FastifyInstance>
  testConfig(input: Record<string, unknown>): GatehouseConfig
}

async function load(tree: string): Promise<Tree> {
  const gateway = await import(pathToFileURL(join(tree, 'src/server/gateway.ts')).href)
  const helpers = await import(pathToFileURL(join(tree, 'test/helpers/gateway.ts')).href)
  return { buildGateway: gateway.buildGateway, testConfig: helpers.testConfig }
}

const other = mkdtempSync(join(tmpdir(), 'gatehouse-versus-'))
const stops: (() => Promise<void>)[] = [async () => rmSync(other, { recursive: true, force: true })]
try {
  execFileSync('sh', ['-c', `git -C "${root}" archive "${ref}" | tar -x -C "${other}"`])
  symlinkSync(join(root, 'node_modules'), join(other, 'node_modules'))
  await main()
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
}

async function main(): Promise<void> {
  const redis = await startRedis()
  stops.push(() => redis.stop())
  const upstream = await spawnPeer(['upstream'])
  stops.push(() => upstream.stop())
  // Each side's IdP must know its redirect URI before the side listens:
  // onFreePort starts the side again on a fresh port should another process
  // take it first.
  const start = (tree: string, side: 'here' | 'there') =>
    onFreePort(async (port) => {
      const idp = await startDevIdp({
        accessTokenTtl: 3_600,
        clients: [
          {
            clientId: 'gatehouse-test',
            clientSecret: 'test-client-secret-that-is-long-enough',
            redirectUris: [`http://127.0.0.1:${port}/auth/callback`],
          },
        ],
      })
      const { buildGateway, testConfig } = await load(tree)
      const config = testConfig({
        port,
        issuer: idp.issuer,
        ...(args.store === 'memory' ? {} : { store: redis.url, keyPrefix: `${redis.prefix}${side}:` }),
        localCache: Number(args['local-cache']),
        routes: [{ path: '/api', upstream: upstream.url, timeout: 5_000 }],
      })
      const app = await buildGateway(config)
      try {
        await app.listen({ host: '127.0.0.1', port })
      } catch (err) {
        await Promise.all([app.close(), idp.close()])
        throw err
      }
      stops.push(() => idp.close())
      await (
        app as FastifyInstance & { gatehouse: { whenDiscovered(): Promise<void> } }
      ).gatehouse.whenDiscovered()
      stops.push(() => app.close())
      const url = `http://127.0.0.1:${port}`
      const { jar } = await login(url, { user: `bench-${randomBytes(4).toString('hex')}` })
      return { app, cookie: `gatehouse=${jar.get(url, 'gatehouse')!}` }
    })
  const sides = { here: await start(root, 'here'), there: await start(other, 'there') }

  const N = 1_000
  const batch = async ({ app, cookie }: { app: FastifyInstance; cookie: string }) => {
    const started = process.cpuUsage()
    for (let i = 0; i < N; i += 10) {
      const answers = await Promise.all(
        Array.from({ length: 10 }, () =>
          app.inject({ url: '/api/items', headers: { cookie, 'x-csrf': '1' } }),
        ),
      )
      const failed = answers.find((a) => a.statusCode !== 200)
      if (failed) throw new Error(`answered ${failed.statusCode}: ${failed.body}`)
    }
    const used = process.cpuUsage(started)
    return (used.user + used.system) / N
  }
  for (let warm = 0; warm < 5; warm++) {
    await batch(sides.here)
    await batch(sides.there)
  }
  const here: number[] = []
  const there: number[] = []
  for (let b = 0; b < Number(args.batches); b++) {
    // Alternate which goes first, so neither always follows the other's garbage.
    if (b % 2 === 0) {
      here.push(await batch(sides.here))
      there.push(await batch(sides.there))
    } else {
      there.push(await batch(sides.there))
      here.push(await batch(sides.here))
    }
  }
  console.log(
    JSON.stringify({
      store: args.store,
      localCache: Number(args['local-cache']),
      batches: here.length,
      here: { cpuMicrosPerRequest: Number(median(here).toFixed(1)) },
      there: { ref, cpuMicrosPerRequest: Number(median(there).toFixed(1)) },
      cpuPerRequestRatio: Number(median(here.map((h, i) => h / there[i]!)).toFixed(3)),
    }),
  )
}
