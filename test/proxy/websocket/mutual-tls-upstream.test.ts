import { once } from 'node:events'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { createServer as createTlsServer, type TLSSocket } from 'node:tls'
import t, { type Test } from 'tap'
import { WebSocket, WebSocketServer } from 'ws'
import { type Issued, makePki } from '../../helpers/certificates.js'
import { route } from '../../helpers/gateway.js'
import { login } from '../../helpers/login.js'
import { startStack } from '../../helpers/stack.js'
import {
  BOUND,
  browserHeaders,
  nextMessage,
  openSocket,
  type Refused,
  wsUrl,
} from '../../helpers/websocket.js'

/**
 * A WebSocket upstream of a service mesh over wss: its certificate from a
 * private CA, and a client certificate from that CA required (Node refuses
 * the handshake otherwise). Its first message on each socket says who it
 * saw; then it echoes.
 */
async function meshWsUpstream(t: Test, server: Issued, ca: string): Promise<string> {
  const https = createServer({
    cert: server.cert,
    key: server.key,
    ca,
    requestCert: true,
    rejectUnauthorized: true,
  })
  const wss = new WebSocketServer({ server: https })
  wss.on('connection', (socket, req) => {
    const tls = req.socket as TLSSocket
    socket.send(
      JSON.stringify({
        client: tls.getPeerCertificate().subject?.CN,
        authorization: req.headers.authorization?.split(' ')[0],
      }),
    )
    socket.on('message', (data) => socket.send(`echo ${data}`))
  })
  await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const client of wss.clients) client.terminate()
    https.closeAllConnections()
    await new Promise((resolve) => https.close(resolve))
  })
  return `https://127.0.0.1:${(https.address() as AddressInfo).port}`
}

t.test(
  'a websocket route over routes[].tls reaches an upstream that requires a client certificate; each missing piece is a 502 that says which',
  async (t) => {
    const pki = makePki(t)
    const other = makePki(t)
    const upstream = await meshWsUpstream(t, pki.issue('live'), pki.ca.cert)
    const client = pki.issue('gatehouse-client')
    const ca = { file: pki.ca.certFile }
    const cert = { cert: { file: client.certFile }, key: { file: client.keyFile } }
    const lines: { msg: string; route?: string; failure?: string; upstreamError?: string; tls?: string }[] =
      []
    const stack = await startStack(t, {
      config: { logLevel: 'warn' },
      gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
      routes: () => [
        route('/ws/live', upstream, { websocket: true, tls: { ca, ...cert } }),
        route('/ws/no-certificate', upstream, { websocket: true, tls: { ca } }),
        route('/ws/wrong-ca', upstream, {
          websocket: true,
          tls: { ca: { file: other.ca.certFile }, ...cert },
        }),
      ],
    })
    const { jar } = await login(stack.gateway.url)
    const headers = browserHeaders(stack, jar)

    // The upstream speaks first: listen before the socket opens.
    const socket = new WebSocket(wsUrl(stack, '/ws/live'), { headers, handshakeTimeout: BOUND })
    t.teardown(() => socket.terminate())
    const first = nextMessage(socket)
    await once(socket, 'open')
    t.same(
      JSON.parse(String(await first)),
      { client: 'gatehouse-client', authorization: 'Bearer' },
      "the upstream saw the route's client certificate, and the user's token",
    )
    socket.send('hello')
    t.equal(String(await nextMessage(socket)), 'echo hello', 'messages flow both ways over wss')

    const refused: [string, RegExp][] = [
      ['/ws/no-certificate', /upstream_tls_failed/],
      ['/ws/wrong-ca', /upstream_tls_failed/],
    ]
    for (const [path, error] of refused) {
      const answer = (await openSocket(wsUrl(stack, path), headers).then(
        (s) => {
          s.terminate()
          return undefined
        },
        (err: Refused) => err,
      )) as Refused | undefined
      t.equal(answer?.status, 502, `${path}: refused`)
      t.match(answer?.body, error, `${path}: as a TLS failure`)
    }
    for (const [path] of refused) {
      const logged = lines.find((l) => l.msg === 'websocket upstream handshake failed' && l.route === path)
      t.equal(logged?.failure, 'tls', `${path}: logged as a TLS failure`)
      t.match(
        logged?.upstreamError,
        /^(ERR_SSL_|UNABLE_TO_VERIFY|SELF_SIGNED|DEPTH_ZERO)/,
        `${path}: with its code`,
      )
      // docs/security.md: the reason is logged as `tls`, for a route's HTTP calls and its WebSocket dials alike.
      t.match(logged?.tls, /certificate|CA/, `${path}: and the reason in words`)
    }
    const scraped = await stack.gateway.app.gatehouse.metrics.registry.metrics()
    for (const [path] of refused)
      t.ok(
        scraped.includes(`gatehouse_upstream_errors_total{route="${path}",kind="tls"} 1`),
        `${path}: counted as a TLS failure`,
      )
  },
)

t.test(
  'an upstream that closes a websocket dial unanswered: the log gives the hint an HTTP call gets',
  async (t) => {
    const pki = makePki(t)
    const server = pki.issue('closer')
    // Takes the TLS handshake, then closes on the first bytes of the request,
    // as a TLS 1.3 server refusing the client certificate looks from here.
    const closer = createTlsServer({ cert: server.cert, key: server.key }, (socket) => {
      socket.once('data', () => socket.destroy())
    })
    await new Promise<void>((resolve) => closer.listen(0, '127.0.0.1', resolve))
    t.teardown(() => closer.close())
    const upstream = `https://127.0.0.1:${(closer.address() as AddressInfo).port}`
    const lines: { msg: string; route?: string; upstreamError?: string; hint?: string }[] = []
    const stack = await startStack(t, {
      config: { logLevel: 'warn' },
      gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
      routes: () => [
        route('/ws/closer', upstream, { websocket: true, tls: { ca: { file: pki.ca.certFile } } }),
      ],
    })
    const { jar } = await login(stack.gateway.url)
    const refused = (await openSocket(wsUrl(stack, '/ws/closer'), browserHeaders(stack, jar)).then(
      (s) => {
        s.terminate()
        return undefined
      },
      (err: Refused) => err,
    )) as Refused | undefined
    t.equal(refused?.status, 502)
    const logged = lines.find((l) => l.msg === 'websocket upstream handshake failed')
    t.match(
      logged?.hint,
      /closed the connection without answering.*client certificate/,
      String(logged?.upstreamError),
    )
  },
)
