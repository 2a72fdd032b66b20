/**
 * A request the router refuses before any hook runs (a target that does
 * not percent-decode, `/%zz`) had no server span: @fastify/otel starts its
 * span in an onRequest hook, which such a request never reaches, so a
 * client's 400s were in no trace. Each now has one server span, named as
 * any request without a route is (its method alone), with its status and
 * catalogue code, never the target it sent; its access line carries its
 * trace and span ids.
 */
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { listeningTestApp } from '../helpers/app.js'
import { requestWhileClosing } from '../helpers/closing.js'
import { route } from '../helpers/gateway.js'
import { ERROR, one, receiveSpans, SERVER } from '../helpers/otlp-receiver.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'

const receiver = await receiveSpans(t)

t.beforeEach(() => receiver.clear())

const BROWSER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const BROWSER_PARENT = '00f067aa0ba902b7'
const BROWSER_TRACEPARENT = `00-${BROWSER_TRACE}-${BROWSER_PARENT}-01`

interface Line {
  readonly msg: string
  readonly [field: string]: unknown
}

/** Writes raw bytes and resolves with what came back once the gateway closes. */
function exchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes))
    let received = ''
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1')
    })
    socket.on('close', () => resolve(received))
    socket.on('error', reject)
  })
}

async function setup(t: Test, trustIncoming: boolean) {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const lines: Line[] = []
  const gateway = await listeningTestApp(
    t,
    {
      logLevel: 'info',
      accessLog: true,
      tracing: { enabled: true, trustIncoming },
      routes: [route('/public', upstream.url, { token: 'none', csrf: false })],
    },
    { logStream: { write: (line: string) => void lines.push(JSON.parse(line) as Line) } },
  )
  return { ...gateway, upstream, lines }
}

const refused = (target: string) =>
  `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\ntraceparent: ${BROWSER_TRACEPARENT}\r\nConnection: close\r\n\r\n`

t.test('a target that does not percent-decode has one server span, named by its method', async (t) => {
  const { app, port, lines } = await setup(t, false)
  const received = await exchange(port, refused('/public/%zz-path-secret?code=query-secret'))
  t.match(received, /^HTTP\/1\.1 400 /)
  await app.close() // flushes the exporter

  const span = one(
    receiver.spans.filter((s) => s.kind === SERVER),
    'server span',
  )
  t.equal(span.name, 'GET', 'named by the method alone, as a request without a route')
  t.match(span.attributes, {
    'http.request.method': 'GET',
    'http.response.status_code': 400,
    'url.path': '',
    'url.scheme': 'http',
    'gatehouse.error.code': 'GATEHOUSE_ERR_INVALID_PATH',
  })
  t.equal(span.attributes['http.route'], undefined, 'no route')
  t.equal(span.status.code, 0, 'a 4xx leaves the status unset')
  t.equal(span.attributes['error.type'], undefined)
  t.not(span.traceId, BROWSER_TRACE, "the browser's traceparent is not trusted by default")
  t.equal(span.parentSpanId, '', 'a root')
  const access = lines.filter((l) => l.msg === 'request')
  t.match(access, [{ path: 'unrouted', code: 'GATEHOUSE_ERR_INVALID_PATH' }])
  t.equal(access[0]?.trace_id, span.traceId, 'the access line carries its trace')
  t.equal(access[0]?.span_id, span.spanId, 'and its span')
  const exported = receiver.bodies.join('\n')
  t.notOk(/secret|%zz/.test(exported), 'no span quotes the target or its query')
})

t.test('with trustIncoming, it continues the incoming trace', async (t) => {
  const { app, port } = await setup(t, true)
  t.match(await exchange(port, refused('/%zz')), /^HTTP\/1\.1 400 /)
  await app.close()
  const span = one(
    receiver.spans.filter((s) => s.kind === SERVER),
    'server span',
  )
  t.equal(span.traceId, BROWSER_TRACE)
  t.equal(span.parentSpanId, BROWSER_PARENT)
})

t.test('a request refused because the gateway closes is a 5xx span that names its code', async (t) => {
  const { app, port, upstream, lines } = await setup(t, false)
  const { received, closing } = await requestWhileClosing(app, port, upstream, '/public/slow', '/public/late')
  await closing // flushes the exporter
  t.match(received, /HTTP\/1\.1 503 /)
  const span = one(
    receiver.spans.filter((s) => s.kind === SERVER && s.attributes['http.response.status_code'] === 503),
    'server span of the 503',
  )
  t.equal(span.name, 'GET /public/*')
  t.equal(span.status.code, ERROR, 'a 5xx is an error')
  t.equal(span.attributes['error.type'], 'GATEHOUSE_ERR_SHUTTING_DOWN')
  t.equal(span.attributes['gatehouse.error.code'], 'GATEHOUSE_ERR_SHUTTING_DOWN')
  const access = lines.filter((l) => l.msg === 'request' && l.status === 503)
  t.match(access, [{ code: 'GATEHOUSE_ERR_SHUTTING_DOWN', trace_id: span.traceId, span_id: span.spanId }])
})

// An answer written behind another on its connection (HTTP/1.1 pipelining,
// as the late request above is) is finished by Node once the one ahead
// is: its access line was written in that request's context, and carried
// that request's trace_id, another user's when a proxy in front shares
// its connections.
t.test("a pipelined request's access line carries its own trace, not that of the answer ahead", async (t) => {
  const { app, port, upstream, lines } = await setup(t, false)
  let release = () => {}
  const asked = new Promise<void>((resolve) =>
    upstream.answer((res) => {
      release = () => res.end('late')
      resolve()
    }),
  )
  const socket = connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  let received = ''
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1')
  })
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  const read = new Promise<void>((resolve) => {
    let requests = 0
    // Fastify's listener came first and answers the 404 synchronously.
    app.server.on('request', () => {
      if (++requests === 2) resolve()
    })
  })
  socket.write(
    'GET /public/slow HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  )
  await read
  await asked
  release()
  await ended
  t.match(received, /200 OK[\s\S]*404 Not Found/)
  await app.close()
  const span404 = one(
    receiver.spans.filter((s) => s.kind === SERVER && s.attributes['http.response.status_code'] === 404),
    '404 span',
  )
  const access = lines.filter((l) => l.msg === 'request' && l.status === 404)
  t.match(access, [{ code: 'GATEHOUSE_ERR_NOT_FOUND', trace_id: span404.traceId, span_id: span404.spanId }])
})
