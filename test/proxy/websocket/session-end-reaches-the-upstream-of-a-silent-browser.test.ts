import { connect } from 'node:net'
import t from 'tap'
import { route } from '../../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../../helpers/login.js'
import { startStack } from '../../helpers/stack.js'
import { closed, until, wsUpstream } from '../../helpers/websocket.js'

const RECHECK = 100 // ms

/**
 * The gateway closed only the browser's leg when the session ended, and
 * told the upstream once the browser had answered. A browser whose
 * connection is up but which no longer reads (a laptop asleep, a frozen
 * tab) never answers: the upstream kept the signed-out user's socket for
 * `ws`'s 30 s close timer, then heard 1006, and the socket held its place
 * under `session.maxWebSockets` as long.
 */
t.test(
  'a session that ends under a browser that no longer reads: the upstream is told 4401 at once, the browser dropped',
  async (t) => {
    const upstream = await wsUpstream(t)
    const stack = await startStack(t, {
      routes: () => [route('/live', upstream.url, { websocket: true })],
      gateway: { websocketRecheck: RECHECK },
    })
    const { jar } = await login(stack.gateway.url)
    const { port } = new URL(stack.gateway.url)
    const silent = connect(Number(port), '127.0.0.1')
    silent.on('error', () => {})
    t.teardown(() => silent.destroy())
    silent.write(
      [
        'GET /live/feed HTTP/1.1',
        `Host: 127.0.0.1:${port}`,
        `Origin: ${stack.gateway.url}`,
        `Cookie: ${jar.header(`${stack.gateway.url}/`)}`,
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
    const atUpstream = closed(await upstream.next())

    const { logoutUrl } = (await apiCall(jar, `${stack.gateway.url}/auth/user`)).json<{ logoutUrl: string }>()
    t.equal((await jarFetch(jar, `${stack.gateway.url}${logoutUrl}`)).status, 200)
    t.same(await atUpstream, { code: 4401, reason: 'session ended' }, 'the upstream is told why, at once')
    const hungUp = new Promise<boolean>((resolve) => {
      silent.once('close', () => resolve(true))
      silent.resume()
    })
    t.ok(await hungUp, 'the silent browser is dropped')
    t.ok(
      await until(() => stack.gateway.app.gatehouse.lasting.sockets.open === 0),
      'and its place given back',
    )
  },
)
