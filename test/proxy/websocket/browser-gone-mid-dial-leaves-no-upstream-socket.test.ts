import type { Socket } from 'node:net'
import t from 'tap'
import { WebSocket } from 'ws'
import { route } from '../../helpers/gateway.js'
import { login } from '../../helpers/login.js'
import { startStack } from '../../helpers/stack.js'
import { browserHeaders, until, wsUpstream, wsUrl } from '../../helpers/websocket.js'

/**
 * The gateway does not read a browser's connection until it answers the
 * handshake, so a reset is what tells it the browser left mid-dial. The
 * upstream's handshake went on regardless: its socket opened with the
 * user's token and no browser to link it to, out of the limits (the
 * browser's place had been given back), the heartbeat and the shutdown,
 * and stayed open as long as the upstream kept it. The red team left 40
 * such upstream sockets of one session, whose limit was 16.
 */
t.test(
  'a browser that resets its connection while the upstream handshake is under way leaves no upstream socket open',
  async (t) => {
    let heard: (dial: { socket: Socket; accept: (ok: boolean) => void }) => void = () => {}
    const dialled = new Promise<{ socket: Socket; accept: (ok: boolean) => void }>((resolve) => {
      heard = resolve
    })
    // The upstream holds its answer until the test lets it go.
    const upstream = await wsUpstream(t, {
      verifyClient: (info, accept) => heard({ socket: info.req.socket as Socket, accept }),
    })
    const stack = await startStack(t, { routes: () => [route('/live', upstream.url, { websocket: true })] })
    const { jar } = await login(stack.gateway.url)
    let connection: Socket | undefined
    const browser = new WebSocket(wsUrl(stack, '/live/feed'), {
      headers: browserHeaders(stack, jar),
      finishRequest: (request) => {
        request.once('socket', (socket: Socket) => {
          connection = socket
        })
        request.end()
      },
    })
    browser.on('error', () => {})
    const { socket, accept } = await dialled
    connection!.resetAndDestroy()
    const { sockets } = stack.gateway.app.gatehouse.lasting
    t.ok(await until(() => sockets.open === 0), "the gateway has seen the reset: the browser's place is back")
    // Whatever the gateway did with its dial meanwhile, the upstream answers now.
    accept(true)
    t.ok(await until(() => socket.destroyed), "the upstream's connection is closed, open or not")
  },
)
