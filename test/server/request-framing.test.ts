import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { listeningTestApp } from '../helpers/app.js'
import { route } from '../helpers/gateway.js'
import { type ScriptedUpstream, scriptedUpstream } from '../helpers/scripted-upstream.js'

async function setup(t: Test): Promise<{ port: number; upstream: ScriptedUpstream }> {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  const { port } = await listeningTestApp(t, {
    routes: [route('/public', upstream.url, { token: 'none', csrf: false })],
  })
  return { port, upstream }
}

interface Exchange {
  /** Everything the gateway sent before it closed the connection. */
  readonly received: string
  /** The gateway closed the connection (rather than the test giving up on it). */
  readonly closedByGateway: boolean
}

/**
 * Writes raw bytes and reads until the gateway closes. Every exchange here
 * ends in a close; the 30 s fallback only ends a test whose gateway kept the
 * socket, and is long enough that a loaded machine never reaches it first.
 */
function exchange(port: number, bytes: string): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes))
    let received = ''
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ received, closedByGateway: false })
    }, 30_000)
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1')
    })
    socket.on('end', () => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ received, closedByGateway: true })
    })
  })
}

const statuses = (received: string) => [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))

t.test('HTTP/1.0 with Transfer-Encoding: 400, the connection closes, nothing is forwarded', async (t) => {
  const { port, upstream } = await setup(t)
  const { received, closedByGateway } = await exchange(
    port,
    'POST /public/a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '3\r\nabc\r\n0\r\n\r\n' +
      // What a front hop that read the body otherwise would not have seen as a request.
      'GET /public/smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
  )
  t.ok(closedByGateway, 'the gateway closed the connection after its answer (RFC 9112 §6.1)')
  t.same(statuses(received), [400], 'one answer, a 400')
  t.match(received, /\r\nconnection: close\r\n/i)
  t.match(received, /"error":"invalid_framing"/)
  t.same(
    upstream.seen.map((r) => r.url),
    [],
    'neither the request nor the one behind it reached the upstream',
  )
})

t.test(
  'HTTP/1.0 with Transfer-Encoding that another check refuses first still closes the connection',
  async (t) => {
    const { port, upstream } = await setup(t)
    const heads = {
      'a malformed target': 'POST /public/a%zz HTTP/1.0\r\nHost: x\r\n',
      'an authority-form target': 'POST //elsewhere/a HTTP/1.0\r\nHost: x\r\n',
      'two Host fields': 'POST /public/a HTTP/1.0\r\nHost: x\r\nHost: y\r\n',
      'HTTP/0.9': 'POST /public/a HTTP/0.9\r\nHost: x\r\n',
    }
    for (const [what, head] of Object.entries(heads)) {
      const { received, closedByGateway } = await exchange(
        port,
        `${head}Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n` +
          'GET /public/smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
      )
      t.ok(closedByGateway, `${what}: the gateway closed the connection`)
      t.same(statuses(received), [400], `${what}: one answer, a 400`)
    }
    t.same(
      upstream.seen.map((r) => r.url),
      [],
      'no request behind a faulty framing reached the upstream, whichever refusal answered it',
    )
  },
)

t.test('HTTP/1.0 with Content-Length, and HTTP/1.1 chunked, are served as before', async (t) => {
  const { port, upstream } = await setup(t)
  const plain = await exchange(port, 'POST /public/a HTTP/1.0\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc')
  t.same(statuses(plain.received), [200])
  const chunked = await exchange(
    port,
    'POST /public/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  )
  t.same(statuses(chunked.received), [200])
  t.same(
    upstream.seen.map((r) => [r.url, r.body.toString()]),
    [
      ['/public/a', 'abc'],
      ['/public/b', 'abc'],
    ],
  )
})

t.test('a coding before chunked: 501 unforwarded, and the connection goes on', async (t) => {
  const { port, upstream } = await setup(t)
  for (const codings of ['gzip, chunked', 'identity, chunked', 'x-custom , chunked']) {
    const { received } = await exchange(
      port,
      `POST /public/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${codings}\r\n\r\n3\r\nabc\r\n0\r\n\r\n` +
        'GET /public/behind HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    )
    t.same(statuses(received), [501, 200], `${codings}: a 501 (RFC 9112 §6.1), then the next request served`)
    t.match(received, /"error":"transfer_coding_unsupported"/)
  }
  const last = await exchange(
    port,
    'POST /public/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  )
  t.ok(last.closedByGateway, 'a last coding other than chunked: the connection closes (§6.3)')
  t.match(statuses(last.received)[0], 501)
  t.same(
    upstream.seen.map((r) => r.url),
    ['/public/behind', '/public/behind', '/public/behind'],
    'no body in a coding the upstream is not told of reached it; the requests behind them did',
  )
})

t.test('chunked in any case is served; split over two header lines, its codings are one list', async (t) => {
  const { port, upstream } = await setup(t)
  const upper = await exchange(
    port,
    'POST /public/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  Chunked \r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  )
  t.same(statuses(upper.received), [200])
  const split = await exchange(
    port,
    'POST /public/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  )
  t.same(statuses(split.received), [501], 'two lines are one list (RFC 9110 §5.3): gzip, chunked')
  t.same(
    upstream.seen.map((r) => [r.url, r.body.toString()]),
    [['/public/a', 'abc']],
  )
})
