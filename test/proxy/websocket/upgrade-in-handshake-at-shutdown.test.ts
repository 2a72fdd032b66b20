import { type AddressInfo, createServer, type Socket } from 'node:net'
import t from 'tap'
import { route } from '../../helpers/gateway.js'
import { startStack } from '../../helpers/stack.js'
import { openSocket, type Refused, wsUrl } from '../../helpers/websocket.js'

/**
 * An upgrade whose upstream handshake is still under way when the gateway
 * begins to close: the gateway ends the dial itself, so the upstream
 * refused nothing. The browser was told `502 upstream_upgrade_refused`,
 * an upstream failure that sends no one elsewhere; it is the instance
 * that is going, which 503 with Retry-After says to a load balancer.
 */
t.test(
  'an upgrade mid-handshake when the gateway closes gets 503 shutting_down with Retry-After',
  async (t) => {
    const sockets = new Set<Socket>()
    let heard: () => void = () => {}
    const handshakeHeard = new Promise<void>((resolve) => {
      heard = resolve
    })
    // An upstream that reads the handshake and never answers it.
    const upstream = createServer((socket) => {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.on('data', (chunk: Buffer) => {
        if (chunk.includes('\r\n\r\n')) heard()
      })
    })
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
    t.teardown(async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => upstream.close(resolve))
    })
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
    const stack = await startStack(t, {
      routes: () => [route('/live', url, { token: 'none', csrf: false, websocket: true })],
    })
    const refused = openSocket(wsUrl(stack, '/live/feed'), {}).then(
      () => undefined,
      (answer: Refused) => answer,
    )
    await handshakeHeard
    await stack.gateway.close()
    const answer = await refused
    t.equal(answer?.status, 503)
    t.equal(answer?.headers['retry-after'], '1', 'a load balancer may send the retry elsewhere')
    t.match(JSON.parse(answer?.body ?? '{}'), { error: 'shutting_down' })
  },
)
