/**
 * One benchmark peer in a process of its own, so a peer's work never shares
 * an event loop with the load generator or another peer. Started by
 * `bench/peers.ts` with an IPC channel: it answers `{ ready: url }` once it
 * listens, `{ advanced }` after `{ advance: ms }` moves a gateway's clock,
 * and `{ live: bytes }` to `{ live: true }`.
 *
 *   peer-process.ts upstream
 *   peer-process.ts ceiling <upstream>         (node:http + undici Pool; see ceiling.ts)
 *   peer-process.ts fastify-proxy <upstream>
 *   peer-process.ts express-bff <upstream>
 *   peer-process.ts gatehouse <config.yaml>   (settings in the environment)
 */

import type { Server } from 'node:http'
import { Agent, createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { ceiling } from './ceiling.js'

type Stop = () => Promise<void>

const [kind, arg] = process.argv.slice(2)
/**
 * Gatehouse's code: the TypeScript sources through tsx, or with
 * `BENCH_GATEHOUSE=dist` the compiled `dist/` that `gatehouse start` and the
 * image run (build it first: `npm run build`). tsx keeps function names by
 * wrapping every closure it makes, so closures made per request cost more
 * under it than in the build (docs/performance.md, seventh pass).
 */
const tree = process.env.BENCH_GATEHOUSE === 'dist' ? '../dist' : '../src'

function send(message: Record<string, unknown>): void {
  process.send?.(message)
}

function listening(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A static JSON answer, built once: the upstream must cost as little as possible. */
async function upstream(): Promise<{ url: string; stop: Stop }> {
  const body = Buffer.from(JSON.stringify({ ok: true, items: [1, 2, 3], note: 'static upstream' }))
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
      res.end(body)
    })
  })
  server.keepAliveTimeout = 75_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: listening(server), stop: () => new Promise((resolve) => server.close(() => resolve())) }
}

/** The naive peer: Fastify and @fastify/http-proxy with their default options. */
async function fastifyProxy(target: string): Promise<{ url: string; stop: Stop }> {
  const { default: fastify } = await import('fastify')
  const { default: httpProxy } = await import('@fastify/http-proxy')
  const app = fastify()
  await app.register(httpProxy, { upstream: target, prefix: '/api' })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  return { url, stop: () => app.close() }
}

/**
 * The classic Node BFF: Express, express-session's MemoryStore and
 * http-proxy-middleware over a keep-alive agent. `GET /login` stands in for
 * the OIDC callback and puts a token of a realistic size in the session.
 */
async function expressBff(target: string): Promise<{ url: string; stop: Stop }> {
  // CommonJS packages whose types are `export =`: load them as CommonJS.
  const require = createRequire(import.meta.url)
  const express = require('express') as typeof import('express')
  const session = require('express-session') as typeof import('express-session')
  const { createProxyMiddleware } = await import('http-proxy-middleware')
  const app = express()
  app.use(
    session({
      secret: 'bench-express-session-secret-of-some-length',
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax', maxAge: 30 * 60_000 },
    }),
  )
  app.get('/login', (req, res) => {
    ;(req.session as unknown as { token: string }).token = 'e'.repeat(900)
    res.json({ ok: true })
  })
  app.use('/api', (req, res, next) => {
    if (req.get('x-csrf') !== '1' || !(req.session as unknown as { token?: string }).token) {
      res.status(401).json({ error: 'unauthenticated' })
      return
    }
    next()
  })
  app.use(
    createProxyMiddleware({
      target,
      pathFilter: '/api',
      agent: new Agent({ keepAlive: true, maxSockets: 128 }),
      on: {
        proxyReq(proxyReq, req) {
          const token = (req as unknown as { session: { token: string } }).session.token
          proxyReq.setHeader('authorization', `Bearer ${token}`)
          proxyReq.removeHeader('cookie')
        },
      },
    }),
  )
  const server = app.listen(0, '127.0.0.1')
  await new Promise<void>((resolve) => server.once('listening', resolve))
  server.keepAliveTimeout = 75_000
  return {
    url: listening(server),
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/**
 * Gatehouse as `gatehouse start` runs it, from a YAML file through the real
 * config loader, with a clock the orchestrator can move (for the refresh
 * storm) and its logs at their configured level on stdout.
 */
async function gatehouse(
  configFile: string,
): Promise<{ url: string; metricsUrl?: string | undefined; stop: Stop }> {
  const { loadConfig } = (await import(`${tree}/config/load.js`)) as typeof import('../src/config/load.js')
  const { start } = (await import(`${tree}/server/start.js`)) as typeof import('../src/server/start.js')
  let offset = 0
  process.on('message', (message: { advance?: number }) => {
    if (typeof message.advance === 'number') {
      offset += message.advance
      send({ advanced: offset })
    }
  })
  const config = loadConfig(configFile, process.env)
  const now = () => Date.now() + offset
  const gateway = await start(config, { handleSignals: false, now })
  await gateway.app.gatehouse.whenDiscovered()
  process.on('message', async (message: { clone?: { cookie: string; count: number } }) => {
    if (message.clone) send({ cloned: await cloneSessions(gateway.app, message.clone, now) })
  })
  return { url: gateway.url, metricsUrl: gateway.metricsUrl, stop: () => gateway.close() }
}

/**
 * `count` sessions made from the one `cookie` opens, for the sessions
 * scaling run (bench/scaling.ts): the same tokens and claims, each under a
 * key, and so a record id and a sealed cookie, of its own.
 */
async function cloneSessions(
  app: import('fastify').FastifyInstance,
  { cookie, count }: { cookie: string; count: number },
  now: () => number,
): Promise<string[]> {
  const { SessionKey } = (await import(
    `${tree}/session/session-key.js`
  )) as typeof import('../src/session/session-key.js')
  const { randomBytes } = await import('node:crypto')
  const name = app.gatehouse.config.session.cookieName
  const sealed = app.parseCookie(cookie)[name]
  const key = SessionKey.fromCookie(sealed && app.decodeSecureSession(sealed, app.log, 'session')?.get('key'))
  if (!key) throw new Error('the cookie to clone opens no session')
  const store = app.gatehouse.stores.sessions
  const original = await store.get({ id: key.sessionId, key }, now())
  if (!original) throw new Error('the session to clone is gone')
  const cookies: string[] = []
  for (let i = 0; i < count; i++) {
    const own = SessionKey.generate()
    await store.create({
      ...original,
      id: own.sessionId,
      key: own,
      logoutHandle: randomBytes(16).toString('base64url'),
    })
    const value = app.encodeSecureSession(app.createSecureSession({ key: own.toCookie() }), 'session')
    cookies.push(`${name}=${encodeURIComponent(value)}`)
  }
  return cookies
}

const peers: Record<
  string,
  (arg: string) => Promise<{ url: string; metricsUrl?: string | undefined; stop: Stop }>
> = {
  upstream,
  ceiling,
  'fastify-proxy': fastifyProxy,
  'express-bff': expressBff,
  gatehouse,
}

const build = kind ? peers[kind] : undefined
if (!build) {
  console.error(`unknown peer ${kind}; one of ${Object.keys(peers).join(', ')}`)
  process.exit(2)
}
const running = await build(arg ?? '').catch((err: NodeJS.ErrnoException) => {
  // The orchestrator starts a gateway again on another port when its port
  // was taken, so it must learn the code, not only that the process died.
  // Exit once the message is out: an IPC send is asynchronous.
  const exit = () => process.exit(1)
  if (process.send) process.send({ failed: err.message, code: err.code }, exit)
  else exit()
  return new Promise<never>(() => {})
})
process.on('message', async (message: { stop?: boolean }) => {
  if (!message.stop) return
  await running.stop()
  // A normal exit, so --cpu-prof writes its profile.
  process.exit(0)
})
// V8's CPU profiler (what --cpu-prof runs), started and stopped on request,
// so a profile covers the measured load and not the start or the warm-up;
// or its sampling heap profiler (`kind: 'heap'`), keeping the objects
// already collected, so the profile counts what was allocated, not what lived.
process.on('message', async (message: { profile?: 'start' | 'stop'; kind?: 'cpu' | 'heap' }) => {
  if (!message.profile) return
  const { Session } = await import('node:inspector/promises')
  profiler ??= new Session()
  if (message.kind === 'heap') {
    if (message.profile === 'start') {
      profiler.connect()
      await profiler.post('HeapProfiler.enable')
      await profiler.post('HeapProfiler.startSampling', {
        samplingInterval: 512,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      })
      send({ profiling: true })
    } else {
      const { profile } = await profiler.post('HeapProfiler.stopSampling')
      profiler.disconnect()
      send({ profile: JSON.stringify(profile) })
    }
  } else if (message.profile === 'start') {
    profiler.connect()
    await profiler.post('Profiler.enable')
    await profiler.post('Profiler.setSamplingInterval', { interval: 100 })
    await profiler.post('Profiler.start')
    send({ profiling: true })
  } else {
    const { profile } = await profiler.post('Profiler.stop')
    profiler.disconnect()
    send({ profile: JSON.stringify(profile) })
  }
})
let profiler: import('node:inspector/promises').Session | undefined
// What the peer holds, without the garbage a peak of its resident set
// counts: its heap and external memory after a full collection.
process.on('message', async (message: { live?: boolean }) => {
  if (!message.live) return
  const { Session } = await import('node:inspector/promises')
  const session = new Session()
  session.connect()
  await session.post('HeapProfiler.collectGarbage')
  session.disconnect()
  const { heapUsed, external } = process.memoryUsage()
  send({ live: heapUsed + external })
})
process.on('disconnect', () => process.exit(0))
send({ ready: running.url, metrics: running.metricsUrl })
