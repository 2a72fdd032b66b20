import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { CLOSE_GRACE } from '../../../src/proxy/websocket/closing.js'
import { route } from '../../helpers/gateway.js'
import { type Stack, startStack } from '../../helpers/stack.js'
import { closed, openSocket, wsUpstream, wsUrl } from '../../helpers/websocket.js'

const ROUTES = ['/live', '/news', '/chat']

/**
 * A browser whose connection is still up but which no longer reads (a
 * laptop put to sleep, a frozen tab) never answers the gateway's close
 * frame. Closing the gateway waited for `ws`'s own close timer, 30 s a
 * socket, so one such socket held every deploy's drain to its end (and
 * the CLI then exits 1); and the upstream was told nothing until the
 * browser's close completed, so it heard 1006 when the process exited.
 * The grace runs for every route's sockets at once, not route after route.
 */
t.test(
  'closing the gateway tells both legs 1001 at once, and drops browsers that never answer within one grace',
  async (t) => {
    const upstream = await wsUpstream(t)
    const stack = await startStack(t, {
      routes: () =>
        ROUTES.map((path) => route(path, upstream.url, { token: 'none', csrf: false, websocket: true })),
    })
    const silent: Socket[] = []
    const heard: Promise<{ code: number; reason: string }>[] = []
    for (const path of ROUTES) {
      silent.push(await silentBrowser(t, stack, `${path}/feed`))
      heard.push(closed(await upstream.next()))
    }
    // A browser that answers, beside them.
    const polite = await openSocket(wsUrl(stack, '/live/feed'), {})
    heard.push(closed(await upstream.next()))
    const atPolite = closed(polite)

    const started = performance.now()
    await stack.gateway.close()
    const took = performance.now() - started
    // One grace and what closing the rest of the stack takes (5–90 ms
    // measured); route after route would be three graces, and ws's own
    // timer 30 s. Under two graces, so a loaded machine's second is room.
    t.ok(took < 2 * CLOSE_GRACE, `closed in ${Math.round(took)} ms, within one grace`)
    const goingAway = { code: 1001, reason: 'gateway shutting down' }
    t.same(await atPolite, goingAway, 'the browser that answers is told 1001')
    t.same(
      await Promise.all(heard),
      ROUTES.map(() => goingAway).concat(goingAway),
      'every upstream is told 1001',
    )
    for (const socket of silent) t.ok(await hungUp(socket), 'a silent browser is dropped')
  },
)

/** A browser that completes the handshake, then reads and sends nothing. */
async function silentBrowser(t: Test, stack: Stack, path: string): Promise<Socket> {
  const { port } = new URL(stack.gateway.url)
  const socket = connect(Number(port), '127.0.0.1')
  socket.on('error', () => {})
  t.teardown(() => socket.destroy())
  socket.write(
    [
      `GET ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13',
      '',
      '',
    ].join('\r\n'),
  )
  const answer = await new Promise<Buffer>((resolve) => socket.once('data', resolve))
  t.match(answer.toString('latin1'), /^HTTP\/1\.1 101 /)
  socket.pause()
  return socket
}

/** True once the gateway's side of `socket` has hung up; what it sent meanwhile is read and dropped. */
function hungUp(socket: Socket): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve(true)
    socket.once('close', () => resolve(true))
    socket.resume()
  })
}
