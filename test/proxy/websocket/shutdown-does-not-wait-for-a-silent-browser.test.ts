import { connect, type Socket } from 'node:net'
import t from 'tap'
import type { WebSocket } from 'ws'
import { CLOSE_GRACE } from '../../../src/proxy/websocket/relay.js'
import { route } from '../../helpers/gateway.js'
import { startStack } from '../../helpers/stack.js'
import { closed, openSocket, wsUpstream, wsUrl } from '../../helpers/websocket.js'

/**
 * A browser whose connection is still up but which no longer reads (a
 * laptop put to sleep, a frozen tab) never answers the gateway's close
 * frame. Closing the gateway waited for `ws`'s own close timer, 30 s a
 * socket, so one such socket held every deploy's drain to its end (and
 * the CLI then exits 1); and the upstream was told nothing until the
 * browser's close completed, so it heard 1006 when the process exited.
 */
t.test(
  'closing the gateway tells both legs 1001 at once, and drops a browser that never answers within the grace',
  async (t) => {
    const upstream = await wsUpstream(t)
    const stack = await startStack(t, {
      routes: () => [route('/live', upstream.url, { token: 'none', csrf: false, websocket: true })],
    })
    const { port } = new URL(stack.gateway.url)

    // The silent browser: a handshake, then nothing read and nothing sent.
    const silent = connect(Number(port), '127.0.0.1')
    silent.on('error', () => {})
    t.teardown(() => silent.destroy())
    silent.write(
      [
        'GET /live/feed HTTP/1.1',
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        '',
        '',
      ].join('\r\n'),
    )
    const [answer] = (await new Promise((resolve) => silent.once('data', (d) => resolve([d])))) as [Buffer]
    t.match(answer.toString('latin1'), /^HTTP\/1\.1 101 /)
    silent.pause()
    const silentUpstream: WebSocket = await upstream.next()

    // A browser that answers, beside it.
    const polite = await openSocket(wsUrl(stack, '/live/feed'), {})
    const politeUpstream = await upstream.next()

    const heard = [closed(silentUpstream), closed(politeUpstream), closed(polite)]
    const started = performance.now()
    await stack.gateway.close()
    const took = performance.now() - started
    t.ok(took < CLOSE_GRACE + 1_000, `closed in ${Math.round(took)} ms, within the grace`)
    const [atSilentUpstream, atPoliteUpstream, atPolite] = await Promise.all(heard)
    const goingAway = { code: 1001, reason: 'gateway shutting down' }
    t.same(atPolite, goingAway, 'the browser that answers is told 1001')
    t.same(atPoliteUpstream, goingAway, 'so is its upstream')
    t.same(atSilentUpstream, goingAway, "the silent browser's upstream is told too, not left to a 1006")
    t.ok(await hungUp(silent), 'the silent browser is dropped')
  },
)

/** True once the gateway's side of `socket` has hung up; what it sent meanwhile is read and dropped. */
function hungUp(socket: Socket): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve(true)
    socket.once('close', () => resolve(true))
    socket.resume()
  })
}
