import { type AddressInfo, connect } from 'node:net'
import t, { type Test } from 'tap'
import { buildGateway } from '../../src/server/gateway.js'
import { start } from '../../src/server/start.js'
import { UNREACHABLE_ISSUER } from '../helpers/app.js'
import { route, testConfig } from '../helpers/gateway.js'
import { serveHttp } from '../helpers/http-server.js'
import { LogLines } from '../helpers/reloadable.js'
import { type ScriptedUpstream, scriptedUpstream } from '../helpers/scripted-upstream.js'

const SECRET_COOKIE = 'gh_session=planted-cookie-value-7f3a'

interface Stack {
  readonly port: number
  readonly upstream: ScriptedUpstream
  readonly logs: LogLines
}

/** A gateway logging at `trace`, its most talkative: a refused request's bytes must reach no line even then. */
async function setup(t: Test, upstreamUrl?: string): Promise<Stack> {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const config = testConfig({
    port: 0,
    issuer: UNREACHABLE_ISSUER,
    routes: [route('/public', upstreamUrl ?? upstream.url, { token: 'none', csrf: false })],
  })
  const logs = new LogLines()
  const app = await buildGateway(
    {
      ...config,
      server: { ...config.server, headersTimeout: 400, requestTimeout: 400 },
      logging: { ...config.logging, level: 'trace' },
    },
    { logStream: logs.stream },
  )
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: (app.server.address() as AddressInfo).port, upstream, logs }
}

interface Refusal {
  readonly status: number
  readonly headers: string
  readonly body: Record<string, unknown>
}

/** Writes raw bytes and reads until the gateway closes the connection, which it must within 5 s. */
function refusal(port: number, bytes: string | Buffer): Promise<Refusal> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes))
    let received = ''
    const bound = setTimeout(() => {
      socket.destroy()
      reject(new Error(`the gateway kept the connection open; it sent ${JSON.stringify(received)}`))
    }, 5_000)
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1')
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(bound)
      const [head = '', body = ''] = received.split('\r\n\r\n')
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1]),
        headers: `${head.toLowerCase()}\r\n`,
        body: body ? (JSON.parse(body) as Record<string, unknown>) : {},
      })
    })
  })
}

function catalogueShaped(t: Test, answer: Refusal, status: number, error: string): void {
  t.equal(answer.status, status)
  t.same(Object.keys(answer.body).sort(), ['error', 'message'], 'the body every other refusal has')
  t.equal(answer.body.error, error)
  t.match(answer.headers, /\r\ncontent-type: application\/json; charset=utf-8\r\n/)
  t.match(answer.headers, /\r\nconnection: close\r\n/)
  t.match(answer.headers, /\r\ncache-control: no-store\r\n/)
  t.match(answer.headers, /\r\nx-content-type-options: nosniff\r\n/)
}

t.test("a request Node's parser refuses gets the catalogue's 400, and nothing is forwarded", async (t) => {
  const { port, upstream } = await setup(t)
  const malformed = [
    'GET /public/a HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n',
    'POST /public/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'GET /public/a HTTP/1.1\nHost: x\n\n',
  ]
  for (const bytes of malformed) {
    catalogueShaped(t, await refusal(port, bytes), 400, 'malformed_request')
  }
  t.same(upstream.seen, [], 'no request reached the upstream')
})

t.test('a header block over maxHeaderSize gets 431 headers_too_large', async (t) => {
  const { port } = await setup(t)
  const answer = await refusal(
    port,
    `GET /public/a HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
  )
  catalogueShaped(t, answer, 431, 'headers_too_large')
})

t.test('a request that stalls past headersTimeout gets 408 request_timeout', async (t) => {
  const { port } = await setup(t)
  const answer = await refusal(port, 'GET /public/a HTTP/1.1\r\nHost: x\r\n')
  catalogueShaped(t, answer, 408, 'request_timeout')
})

t.test("a refused request's bytes, its cookie among them, never reach the log", async (t) => {
  const { port, logs } = await setup(t)
  await refusal(
    port,
    `GET /public/a HTTP/1.1\r\nHost: x\r\nCookie: ${SECRET_COOKIE}\r\nBad Header: 1\r\n\r\n`,
  )
  // Logged before the answer is written, so every line is in by now.
  t.notMatch(JSON.stringify(logs.lines), 'planted-cookie-value', 'no line holds the cookie')
  const line = await logs.seen('the refusal', (l) => l.msg === 'request refused by the HTTP parser')
  t.equal(line.code, 'GATEHOUSE_ERR_MALFORMED_REQUEST')
  t.equal(line.parserError, 'HPE_INVALID_HEADER_TOKEN', "the parser's reason, for whoever debugs a client")
})

t.test(
  'a request that times out while its answer streams: the connection closes, no head inside the answer',
  async (t) => {
    // The upstream answers at once and streams, never reading the upload.
    const streaming = await serveHttp(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('first part;')
    })
    const { port } = await setup(t, streaming)
    const socket = connect(port, '127.0.0.1', () =>
      socket.write('POST /public/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nten bytes.'),
    )
    let received = ''
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1')
    })
    socket.on('error', () => {})
    await new Promise((resolve) => socket.on('close', resolve))
    t.match(received, /^HTTP\/1\.1 200 /, 'the answer had begun')
    t.match(received, /first part;/)
    t.notMatch(
      received,
      /HTTP\/1\.1 408/,
      'the timeout closed the connection without writing a head into the body',
    )
  },
)

t.test('through the listener that `gatehouse start` serves with, the same answer', async (t) => {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const gateway = await start(
    testConfig({
      port: 0,
      issuer: UNREACHABLE_ISSUER,
      routes: [route('/public', upstream.url, { token: 'none', csrf: false })],
    }),
    { handleSignals: false },
  )
  t.teardown(() => gateway.close())
  const answer = await refusal(
    Number(new URL(gateway.url).port),
    'GET /public/a HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n',
  )
  catalogueShaped(t, answer, 400, 'malformed_request')
})
