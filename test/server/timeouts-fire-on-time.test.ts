import { type AddressInfo, connect } from 'node:net'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import t from 'tap'
import { buildGateway } from '../../src/server/gateway.js'
import { testConfig } from '../helpers/gateway.js'
import { REFUSED_URL } from '../helpers/ports.js'

/**
 * Opens a socket, writes `bytes`, and measures how long until the gateway
 * answers and closes it. A 10 s bound fails the test instead of hanging it:
 * Node's default check every 30 s would land far past it.
 */
function timeToAnswer(port: number, bytes: string): Promise<{ ms: number; answer: string }> {
  return new Promise((resolve, reject) => {
    let answer = ''
    let started = 0
    const socket = connect(port, '127.0.0.1', () => {
      started = performance.now()
      socket.write(bytes)
    })
    const bound = setTimeout(() => {
      socket.destroy()
      reject(new Error('no answer within 10 s'))
    }, 10_000)
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1')
    })
    socket.on('close', () => {
      clearTimeout(bound)
      resolve({ ms: performance.now() - started, answer })
    })
    socket.on('error', () => {})
  })
}

t.test('headersTimeout and requestTimeout fire within a second of their configured values', async (t) => {
  // Raw sockets only: the gateway's port need not be known before it listens.
  const base = testConfig({ port: 0, publicUrl: 'http://127.0.0.1', issuer: REFUSED_URL, routes: [] })
  // A second apart, as the window each must fire in is a second wide: which fired is never in doubt.
  const config = { ...base, server: { ...base.server, headersTimeout: 1_000, requestTimeout: 2_000 } }
  const app = await buildGateway(config)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo

  // Node sweeps for expired requests on a timer of this event loop, so a
  // loaded machine that holds the loop holds the sweep too, past a window
  // that is a second wide: how long the loop was held is measured and
  // allowed, which a sweep every 30 s (Node's default) would still far exceed.
  const held = monitorEventLoopDelay({ resolution: 10 })
  held.enable()
  const [headers, request] = await Promise.all([
    // Half a header block, then silence (slowloris).
    timeToAnswer(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a'),
    // Whole headers, a tenth of the promised body, then silence.
    timeToAnswer(
      port,
      'POST /auth/backchannel-logout HTTP/1.1\r\nHost: x\r\n' +
        'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nlogout_to',
    ),
  ])
  held.disable()
  const stalled = held.max / 1e6
  const late = `the event loop held at most ${Math.round(stalled)} ms`
  t.match(headers.answer, /^HTTP\/1\.1 408/, 'partial headers: 408')
  t.ok(
    headers.ms >= 900 && headers.ms <= 2_000 + stalled,
    `headersTimeout 1 s fired at ${Math.round(headers.ms)} ms; ${late}`,
  )
  t.match(request.answer, /^HTTP\/1\.1 408/, 'partial body: 408')
  t.ok(
    request.ms >= 1_900 && request.ms <= 3_000 + stalled,
    `requestTimeout 2 s fired at ${Math.round(request.ms)} ms; ${late}`,
  )
})
