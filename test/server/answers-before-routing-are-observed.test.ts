/**
 * The answers the gateway gives before a route handles a request: a target
 * that does not percent-decode (`/%zz`, refused by the router before any
 * hook), a second Host, faulty framing, a target that is no path, a 404,
 * and the 503s of an instance that is closing. They left an operator
 * nothing: no access line (or one that did not say which check refused
 * the request), no `gatehouse_http_requests_total` sample, and Fastify's
 * own 503, in a body of another shape. Each is now counted under a bounded
 * route label, and its access line names its catalogue code, never the
 * path the client sent.
 */
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { listeningTestApp } from '../helpers/app.js'
import { requestWhileClosing } from '../helpers/closing.js'
import { route } from '../helpers/gateway.js'
import { LogLines, startReloadable } from '../helpers/reloadable.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'

interface Line {
  readonly level: number
  readonly msg: string
  readonly [field: string]: unknown
}

/**
 * Writes raw bytes and resolves with what came back once the gateway closes,
 * or after 30 s: every exchange here ends in a close, so the fallback is only
 * for a defect, never reached first on a loaded machine.
 */
function exchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes))
    let received = ''
    const timer = setTimeout(() => {
      socket.destroy()
      resolve(received)
    }, 30_000)
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1')
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(received)
    })
    socket.on('error', () => {})
  })
}

const statusOf = (received: string) => Number(/^HTTP\/1\.1 (\d{3}) /.exec(received)?.[1] ?? 0)

async function setup(t: Test) {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const lines: Line[] = []
  const gateway = await listeningTestApp(
    t,
    {
      logLevel: 'info',
      accessLog: true,
      routes: [route('/public', upstream.url, { token: 'none', csrf: false })],
    },
    { logStream: { write: (line: string) => void lines.push(JSON.parse(line) as Line) } },
  )
  const requests = async () =>
    (await gateway.app.gatehouse.metrics.registry.metrics())
      .split('\n')
      .filter((l) => l.startsWith('gatehouse_http_requests_total{'))
  /** The access lines written since the last call. */
  let read = 0
  const accessLines = () => {
    const fresh = lines.slice(read).filter((l) => l.msg === 'request')
    read = lines.length
    return fresh
  }
  return { ...gateway, upstream, lines, requests, accessLines }
}

const head = (target: string, more = '') =>
  `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${more}Connection: close\r\n\r\n`

t.test("a refusal's access line names the check that refused it", async (t) => {
  const { port, accessLines } = await setup(t)
  const cases = [
    {
      what: 'two Host fields',
      bytes: head('/public/a', 'Host: elsewhere\r\n'),
      code: 'GATEHOUSE_ERR_DUPLICATE_HOST',
    },
    { what: 'an authority as the target', bytes: head('//elsewhere/a'), code: 'GATEHOUSE_ERR_INVALID_PATH' },
    {
      what: 'the asterisk form',
      bytes: 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      code: 'GATEHOUSE_ERR_INVALID_PATH',
    },
    {
      what: 'a transfer coding the gateway does not take',
      bytes:
        'POST /public/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n',
      code: 'GATEHOUSE_ERR_TRANSFER_CODING_UNSUPPORTED',
    },
    {
      what: 'HTTP/1.0 with Transfer-Encoding',
      bytes: 'POST /public/a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      code: 'GATEHOUSE_ERR_INVALID_FRAMING',
    },
    { what: 'no route', bytes: head('/nowhere'), code: 'GATEHOUSE_ERR_NOT_FOUND' },
  ]
  for (const { what, bytes, code } of cases) {
    const status = statusOf(await exchange(port, bytes))
    t.ok(status >= 400, `${what}: refused (${status})`)
    const logged = accessLines()
    t.equal(logged.length, 1, `${what}: one access line`)
    t.match(logged[0], { status, code }, `${what}: with its status and code`)
  }
  t.equal(statusOf(await exchange(port, head('/public/a'))), 200)
  t.notOk('code' in accessLines()[0]!, 'an answer that is no refusal names no code')
})

t.test('a target that does not percent-decode is counted, logged and never quoted', async (t) => {
  const { port, accessLines, requests, lines } = await setup(t)
  // Every one a target of its own: what a scanner sends. None may add a series or be logged.
  for (let i = 0; i < 20; i++) {
    const received = await exchange(port, head(`/public/%zz${i}-path-secret?q=query-secret-${i}`))
    t.equal(statusOf(received), 400, `target ${i}: 400`)
    t.match(received, /"error":"invalid_path"/)
  }
  t.same(
    await requests(),
    ['gatehouse_http_requests_total{route="unrouted",method="GET",status="400"} 20'],
    'one series, under the route label unrouted',
  )
  const logged = accessLines()
  t.equal(logged.length, 20, 'one access line each')
  t.match(logged[0], {
    level: 30,
    method: 'GET',
    path: 'unrouted',
    status: 400,
    ms: Number,
    code: 'GATEHOUSE_ERR_INVALID_PATH',
    reqId: String,
  })
  t.notMatch(JSON.stringify(lines), /secret|%zz/, 'no line quotes the target or its query')
})

t.test('a faulty-framed request the router refuses is counted and logged as a framing refusal', async (t) => {
  const { port, accessLines, requests } = await setup(t)
  const received = await exchange(
    port,
    'POST /public/%zz HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  )
  t.equal(statusOf(received), 400)
  t.match(received, /"error":"invalid_framing"/)
  t.same(await requests(), ['gatehouse_http_requests_total{route="unrouted",method="POST",status="400"} 1'])
  t.match(accessLines(), [{ path: 'unrouted', status: 400, code: 'GATEHOUSE_ERR_INVALID_FRAMING' }])
})

t.test('a path parameter longer than the router takes is a 404 that quotes nothing', async (t) => {
  const { port, accessLines, requests } = await setup(t)
  // Fastify's maxParamLength is 100; a provider's name is at most 32 characters.
  const name = `${'a'.repeat(100)}-param-secret`
  const received = await exchange(
    port,
    `POST /auth/backchannel-logout/${name} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
  )
  t.equal(statusOf(received), 404, 'no provider has that name')
  t.match(received, /"error":"not_found"/)
  t.notMatch(received, /param-secret/, 'the body does not echo the path')
  t.same(await requests(), ['gatehouse_http_requests_total{route="unrouted",method="POST",status="404"} 1'])
  t.match(accessLines(), [{ path: 'unrouted', status: 404, code: 'GATEHOUSE_ERR_NOT_FOUND' }])
})

t.test(
  'a request that comes while the gateway closes is a counted, logged 503 of the catalogue',
  async (t) => {
    const { app, port, upstream, accessLines, requests } = await setup(t)
    const { received, closing } = await requestWhileClosing(
      app,
      port,
      upstream,
      '/public/slow',
      '/public/late',
    )
    await closing
    const answers = received.split(/(?=HTTP\/1\.1 )/)
    t.equal(answers.length, 2, 'both requests answered')
    t.match(answers[1], /^HTTP\/1\.1 503 /)
    t.match(answers[1], /\r\nretry-after: 1\r\n/i)
    t.match(answers[1], /\r\nconnection: close\r\n/i)
    t.match(answers[1], /\{"error":"shutting_down","message":"[^"]+"\}$/)
    t.same(
      upstream.seen.map((r) => r.url),
      ['/public/slow'],
      'the late request reached no upstream',
    )
    t.same(await requests(), [
      'gatehouse_http_requests_total{route="/public/*",method="GET",status="200"} 1',
      'gatehouse_http_requests_total{route="/public/*",method="GET",status="503"} 1',
    ])
    t.match(accessLines(), [
      { path: '/public/*', status: 200 },
      { path: '/public/*', status: 503, code: 'GATEHOUSE_ERR_SHUTTING_DOWN' },
    ])
  },
)

/** A WebSocket upgrade of `path`. */
const upgrade = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'

/** A request and, in the same write, an upgrade pipelined behind it (RFC 9112 §9.3.2). */
const pipelinedUpgrade = (path: string) => `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n${upgrade(path)}`

t.test('an upgrade pipelined behind an answer, never served, is counted and logged as cut off', async (t) => {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const logs = new LogLines()
  const { app, port } = await listeningTestApp(
    t,
    {
      logLevel: 'info',
      accessLog: true,
      routes: [route('/live', upstream.url, { token: 'none', websocket: true })],
    },
    { logStream: logs.stream },
  )
  const received = await exchange(port, pipelinedUpgrade('/live/path-secret'))
  t.match(received, /^HTTP\/1\.1 200 /, 'the request ahead is answered')
  t.notMatch(received, /HTTP\/1\.1 101 /, 'the upgrade is not served')
  // Logged, and counted just before, when the gateway's side of the connection has closed.
  const line = await logs.seen('the access line', (l) => l.msg === 'request' && l.path === 'unrouted')
  t.match(line, {
    method: 'GET',
    code: 'GATEHOUSE_UPGRADE_NOT_SERVED',
    abandoned: true,
    reqId: String,
    ms: Number,
  })
  const metrics = await app.gatehouse.metrics.registry.metrics()
  t.match(metrics, 'gatehouse_http_requests_abandoned_total{route="unrouted",method="GET"} 1')
  t.notMatch(JSON.stringify(logs.lines), /path-secret/)
})

t.test("through the CLI's listener, without a WebSocket route: the same", async (t) => {
  const logs = new LogLines()
  const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], {
    input: { logLevel: 'info', accessLog: true },
    logStream: logs.stream,
  })
  const received = await exchange(Number(new URL(stack.url).port), pipelinedUpgrade('/api/x'))
  t.match(received, /^HTTP\/1\.1 200 /)
  const line = await logs.seen('the access line', (l) => l.msg === 'request' && l.path === 'unrouted')
  t.match(line, { code: 'GATEHOUSE_UPGRADE_NOT_SERVED', abandoned: true })
  const metrics = await stack.running.app.gatehouse.metrics.registry.metrics()
  t.match(metrics, 'gatehouse_http_requests_abandoned_total{route="unrouted",method="GET"} 1')
})

t.test('an upgrade whose target does not percent-decode is counted and logged like any other', async (t) => {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const logs = new LogLines()
  const { app, port } = await listeningTestApp(
    t,
    {
      logLevel: 'info',
      accessLog: true,
      routes: [route('/live', upstream.url, { token: 'none', websocket: true })],
    },
    { logStream: logs.stream },
  )
  // Node hands it over as an upgrade; the app routes it on its socket.
  const received = await exchange(port, upgrade('/live/%zz'))
  t.match(received, /^HTTP\/1\.1 400 /)
  t.match(received, /"error":"invalid_path"/)
  const line = await logs.seen('the access line', (l) => l.msg === 'request')
  t.match(line, { path: 'unrouted', status: 400, code: 'GATEHOUSE_ERR_INVALID_PATH' })
  const metrics = await app.gatehouse.metrics.registry.metrics()
  t.match(metrics, 'gatehouse_http_requests_total{route="unrouted",method="GET",status="400"} 1')
})
