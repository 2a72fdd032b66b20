import { type AddressInfo, createServer } from 'node:net'
import type { Test } from 'tap'
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { buildGateway } from '../../src/server/gateway.js'
import { start } from '../../src/server/start.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { jarFetch } from '../helpers/login.js'
import { type Stack, startStack } from '../helpers/stack.js'

/**
 * The stack's config run by `start`, as the CLI runs it, with these metrics
 * settings, in a second gateway on a port of its own (0: nobody signs in
 * there, so its public URL need not name it); `publicUrl` is where it listens.
 */
async function started(t: Test, metrics: Partial<Stack['config']['metrics']>) {
  const stack = await startStack(t)
  const running = await start(
    {
      ...stack.config,
      server: { ...stack.config.server, port: 0 },
      metrics: { ...stack.config.metrics, ...metrics },
    },
    { handleSignals: false },
  )
  t.teardown(() => running.close())
  return { running, publicUrl: running.url }
}

t.test(
  'by default /metrics is not on the public listener: 404 there, even for a signed-out caller',
  async (t) => {
    const minimal = `server: { publicUrl: http://127.0.0.1:3000 }
oidc: { issuer: http://127.0.0.1:4000, clientId: a, clientSecret: b }
session: { secret: "${'s'.repeat(32)}" }
routes: []
`
    const defaults = parseConfig(minimal, 'routes.yaml', {}).metrics
    t.same(defaults, { enabled: true, host: '127.0.0.1', port: 9464 }, 'on, loopback, its own port')
    const stack = await startStack(t)
    // buildGateway and listen, as the tests run it: the public listener only.
    const app = await buildGateway({
      ...stack.config,
      server: { ...stack.config.server, port: 0 },
      metrics: defaults,
    })
    t.teardown(() => app.close())
    await app.listen({ host: '127.0.0.1', port: 0 })
    const res = await jarFetch(
      new CookieJar(),
      `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/metrics`,
    )
    t.equal(res.status, 404)
    t.notMatch(res.text, /gatehouse_/)
  },
)

t.test('the metrics listener serves /metrics, and only that, on metrics.host', async (t) => {
  const { running, publicUrl } = await started(t, { host: '127.0.0.1', port: 0 })
  t.match(running.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
  const scraped = await fetch(running.metricsUrl!)
  t.equal(scraped.status, 200)
  t.match(scraped.headers.get('content-type'), /text\/plain/)
  t.match(await scraped.text(), /gatehouse_process_cpu_user_seconds_total/)
  t.equal((await fetch(new URL('/healthz', running.metricsUrl))).status, 404, 'nothing else there')
  // Another method is told which ones the path takes, as on the gateway's own routes.
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    const refused = await fetch(running.metricsUrl!, { method })
    t.equal(refused.status, 405, method)
    t.equal(refused.headers.get('allow'), 'GET, HEAD', `${method}: Allow`)
    t.equal(refused.headers.get('cache-control'), 'no-store', `${method}: not cached`)
    t.same(
      await refused.json(),
      {
        error: 'method_not_allowed',
        message: 'This route does not accept this method; the Allow header lists those it does.',
      },
      `${method}: the problem body of the gateway's own errors`,
    )
  }
  t.equal((await fetch(running.metricsUrl!, { method: 'HEAD' })).status, 200, 'HEAD with GET')
  t.equal((await jarFetch(new CookieJar(), `${publicUrl}/metrics`)).status, 404, 'not on the public port')
})

t.test('metrics.host is the only interface the listener binds', async (t) => {
  // 127.0.0.2 is loopback on Linux, but a different address from 127.0.0.1.
  const { running } = await started(t, { host: '127.0.0.2', port: 0 })
  const url = new URL(running.metricsUrl!)
  t.equal(url.hostname, '127.0.0.2')
  t.equal((await fetch(url)).status, 200)
  url.hostname = '127.0.0.1'
  await t.rejects(fetch(url), 'nothing listens on 127.0.0.1 at that port')
})

t.test('the listener closes with the gateway', async (t) => {
  const { running } = await started(t, { port: 0 })
  t.equal((await fetch(running.metricsUrl!)).status, 200)
  await running.close()
  await t.rejects(fetch(running.metricsUrl!), 'closed by close()')
})

t.test('metrics.enabled: false serves /metrics nowhere', async (t) => {
  const { running, publicUrl } = await started(t, { enabled: false, port: 0 })
  t.equal(running.metricsUrl, undefined)
  t.equal((await jarFetch(new CookieJar(), `${publicUrl}/metrics`)).status, 404)
})

t.test('a metrics port already taken fails the start, and the public listener is closed again', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())))
  const { port } = taken.address() as AddressInfo
  const stack = await startStack(t)
  // The public listener binds first, on a port of its own; which one the log says.
  const lines: string[] = []
  await t.rejects(
    start(
      {
        ...stack.config,
        server: { ...stack.config.server, port: 0 },
        logging: { ...stack.config.logging, level: 'info' },
        metrics: { ...stack.config.metrics, port },
      },
      { handleSignals: false, logStream: { write: (line: string) => void lines.push(line) } },
    ),
    {
      code: 'EADDRINUSE',
      message: `the metrics listener cannot listen: port ${port} on 127.0.0.1 is already in use (EADDRINUSE); set metrics.port (and metrics.host) to a free port, or metrics.enabled: false`,
    },
    'the message names metrics.port',
  )
  const publicUrl = lines
    .map((line) => /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1])
    .find(Boolean)
  t.ok(publicUrl, 'the public listener had started')
  await t.rejects(fetch(`${publicUrl}/healthz`), 'the public port was released')
})

t.test(
  'with a catch-all route, /metrics on the public port is that route’s upstream’s, never the gateway’s',
  async (t) => {
    const stack = await startStack(t, {
      routes: (upstream) => [route('/', upstream, { token: 'none', csrf: false })],
    })
    const res = await jarFetch(new CookieJar(), `${stack.gateway.url}/metrics`)
    t.equal(res.status, 200, 'proxied like any other path')
    t.equal(stack.upstream.requests.at(-1)?.path, '/metrics', 'to the frontend upstream')
    t.notMatch(res.text, /gatehouse_/, 'which has no gateway metrics to give')
  },
)
