import { connect } from 'node:net'
import t from 'tap'
import { start } from '../../src/server/start.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { freePort } from '../helpers/gateway.js'
import { jarFetch } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

t.test('client-side limits: header size, header and request timeouts, keep-alive', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const server = stack.gateway.app.server
  t.equal(server.headersTimeout, 10_000)
  t.equal(server.requestTimeout, 60_000)
  t.equal(server.keepAliveTimeout, 72_000)

  const { port } = new URL(stack.gateway.url)
  const status = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`)
    })
    socket.once('data', (d) => {
      resolve(d.toString().split('\r\n')[0]!)
      socket.destroy()
    })
    socket.once('error', reject)
  })
  t.match(status, /^HTTP\/1\.1 431/, 'a header block over maxHeaderSize gets 431')
  t.equal(
    (await jarFetch(new CookieJar(), `${stack.gateway.url}/healthz`)).status,
    200,
    'and the gateway keeps serving',
  )
})

t.test('metrics.port serves /metrics on its own listener, off the public port', async (t) => {
  const stack = await startStack()
  await stack.gateway.close()
  const metricsPort = await freePort()
  const running = await start(
    { ...stack.config, metrics: { enabled: true, port: metricsPort } },
    { handleSignals: false },
  )
  t.teardown(async () => {
    await running.close()
    await stack.upstream.close()
    await stack.idp.close()
  })
  const scraped = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
  t.equal(scraped.status, 200)
  t.match(await scraped.text(), /gatehouse_http_requests_total|gatehouse_process_cpu/)
  t.equal(
    (await jarFetch(new CookieJar(), `${stack.gateway.url}/metrics`)).status,
    404,
    'not on the public port',
  )
})
