import { type AddressInfo, createServer } from 'node:net'
import type { Test } from 'tap'
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { start } from '../../src/server/start.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { startGateway } from '../helpers/gateway.js'
import { jarFetch } from '../helpers/login.js'
import { type Stack, startStack } from '../helpers/stack.js'

/** A stack whose gateway is run by `start`, as the CLI runs it, with these metrics settings. */
async function started(t: Test, metrics: Partial<Stack['config']['metrics']>) {
  const stack = await startStack(t)
  await stack.gateway.close()
  const running = await start(
    { ...stack.config, metrics: { ...stack.config.metrics, ...metrics } },
    { handleSignals: false },
  )
  t.teardown(() => running.close())
  return { running, publicUrl: stack.config.server.publicUrl }
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
    await stack.gateway.close()
    // buildGateway and listen, as the tests run it: the public listener only.
    const gateway = await startGateway({ ...stack.config, metrics: defaults })
    t.teardown(() => gateway.close())
    const res = await jarFetch(new CookieJar(), `${gateway.url}/metrics`)
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
  t.equal((await fetch(running.metricsUrl!, { method: 'POST' })).status, 404)
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

t.test('the listener closes with the gateway, whoever closes it', async (t) => {
  const { running } = await started(t, { port: 0 })
  t.equal((await fetch(running.metricsUrl!)).status, 200)
  await running.app.close()
  await t.rejects(fetch(running.metricsUrl!), 'closed by app.close()')
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
  await stack.gateway.close()
  await t.rejects(
    start({ ...stack.config, metrics: { ...stack.config.metrics, port } }, { handleSignals: false }),
    {
      code: 'EADDRINUSE',
      message: `the metrics listener cannot listen: port ${port} on 127.0.0.1 is already in use (EADDRINUSE); set metrics.port (and metrics.host) to a free port, or metrics.enabled: false`,
    },
    'the message names metrics.port',
  )
  await t.rejects(fetch(`${stack.config.server.publicUrl}/healthz`), 'the public port was released')
})
