import { request } from 'node:http'
import { type AddressInfo, createServer, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { networkCause } from '../../src/network-cause.js'
import { createIdpHttp } from '../../src/oidc/idp-http.js'
import { buildGateway } from '../../src/server/gateway.js'
import { UNREACHABLE_ISSUER } from '../helpers/app.js'
import { route, testConfig } from '../helpers/gateway.js'

/**
 * When the silent peer hangs up itself: three times the 100 ms budgets.
 * undici's own connect timer ticks every 499 ms, so the earliest it can
 * fire is 499 ms after the dial, after this. A connect timeout, with the
 * dialler the one that closed, was therefore the gateway's own timer:
 * proven by the order of events, not by a clock a loaded machine stretches.
 */
const PEER_HANGS_UP_AFTER = 300

/** Who closed the silent peer's connection. */
type Closer = 'dialler' | 'peer'

/**
 * A peer that accepts the TCP connection and never says a word: dialled as
 * https, the TLS handshake never completes, and undici counts that in its
 * connect budget. It hangs up after PEER_HANGS_UP_AFTER; `dropped` settles
 * when the connection closes, with who closed it.
 */
async function silentPeer(t: Test) {
  const accepted: Socket[] = []
  let dropped: (closer: Closer) => void = () => {}
  const server = createServer((socket) => {
    accepted.push(socket)
    socket.on('error', () => {})
    // Read and drop the ClientHello, so that the dialler's close is heard.
    socket.resume()
    let closer: Closer | undefined
    // The dialler's FIN, or its RST.
    socket.once('end', () => {
      closer ??= 'dialler'
    })
    socket.once('error', () => {
      closer ??= 'dialler'
    })
    const hangUp = setTimeout(() => {
      // A loop held past both deadlines runs this timer in the same phase
      // as the dialler's, which has closed its end: that close is still to
      // be read, and the poll phase before an immediate reads it.
      setImmediate(() => {
        closer ??= 'peer'
        socket.destroy()
      })
    }, PEER_HANGS_UP_AFTER)
    socket.once('close', () => {
      clearTimeout(hangUp)
      dropped(closer ?? 'dialler')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of accepted) socket.destroy()
        server.close(() => resolve())
      }),
  )
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    nextDrop: () =>
      new Promise<Closer>((resolve) => {
        dropped = resolve
      }),
  }
}

t.test('a 100 ms oidc.connectTimeout gives up on a silent IdP before it hangs up at 300 ms', async (t) => {
  const peer = await silentPeer(t)
  const http = createIdpHttp({ timeoutMs: 5_000, connectTimeoutMs: 100, allowHttp: false })
  t.teardown(() => http.close())
  const dropped = peer.nextDrop()
  const start = performance.now()
  const failure = await http.fetch(`${peer.url}/.well-known/openid-configuration`, {}).then(
    () => undefined,
    (err: unknown) => err,
  )
  const ms = performance.now() - start
  t.equal(
    networkCause(failure, { connect: { ms: 100, name: 'oidc.connectTimeout' } }),
    'connect timed out after 100 ms (oidc.connectTimeout)',
    `the connect budget, not the total one, after ${Math.round(ms)} ms`,
  )
  t.equal(await dropped, 'dialler', 'the IdP saw the connection closed by the gateway')
})

t.test(
  'a route timeout of 100 ms bounds the connect too: 504 before the upstream hangs up at 300 ms',
  async (t) => {
    const peer = await silentPeer(t)
    const app = await buildGateway(
      testConfig({
        port: 0,
        issuer: UNREACHABLE_ISSUER,
        routes: [route('/silent', peer.url, { token: 'none', csrf: false, timeout: 100 })],
      }),
    )
    t.teardown(() => app.close())
    await app.listen({ host: '127.0.0.1', port: 0 })
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    const dropped = peer.nextDrop()
    const start = performance.now()
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      request(`${base}/silent/x`, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          body += chunk
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
        .on('error', reject)
        .end()
    })
    const ms = performance.now() - start
    t.equal(answer.status, 504, `504 after ${Math.round(ms)} ms`)
    t.match(answer.body, /"error":"upstream_timeout"/)
    t.equal(await dropped, 'dialler', 'the upstream saw the connection closed by the gateway')
  },
)
