import t from 'tap'
import type { WebSocket } from 'ws'
import { route } from '../../helpers/gateway.js'
import { login } from '../../helpers/login.js'
import { type Stack, startStack } from '../../helpers/stack.js'
import {
  browserHeaders,
  closed,
  metrics,
  openSocket,
  type Refused,
  until,
  wsUpstream,
  wsUrl,
} from '../../helpers/websocket.js'

const gauge = async (stack: Stack, route: string) =>
  Number(
    new RegExp(`gatehouse_websockets_open\\{route="${route}"\\} (\\d+)`).exec(await metrics(stack))?.[1] ?? 0,
  )

t.test(
  'a session holds at most session.maxWebSockets sockets: one more is a 429, before the upstream hears of it',
  async (t) => {
    const upstream = await wsUpstream(t)
    const stack = await startStack(t, {
      routes: () => [
        route('/live', upstream.url, { websocket: true }),
        route('/news', upstream.url, { websocket: true }),
      ],
      config: { sessionMaxWebSockets: 2 },
    })
    const alice = await login(stack.gateway.url)
    const headers = browserHeaders(stack, alice.jar)
    const open: WebSocket[] = []
    t.teardown(() => {
      for (const socket of open) socket.terminate()
    })
    open.push(await openSocket(wsUrl(stack, '/live/a'), headers))
    open.push(await openSocket(wsUrl(stack, '/news/b'), headers))
    const refused = (await openSocket(wsUrl(stack, '/live/c'), headers).catch((e) => e)) as Refused
    t.equal(refused.status, 429, 'the limit is over every route')
    t.match(JSON.parse(refused.body), { error: 'too_many_websockets' })
    t.equal(upstream.upgrades.length, 2, 'the upstream never saw the third')
    t.match(
      await metrics(stack),
      'gatehouse_websocket_upgrades_refused_total{route="/live",limit="session_limit"} 1',
    )

    const bob = await login(stack.gateway.url)
    open.push(await openSocket(wsUrl(stack, '/live/d'), browserHeaders(stack, bob.jar)))
    t.pass("another session's sockets are counted apart")

    const first = open[0]!
    const end = closed(first)
    first.close()
    await end
    // The place is given back when the gateway's side of the connection
    // closes, a moment after the browser's close event.
    t.ok(
      await until(async () => (await gauge(stack, '/live')) === 1),
      'the closed socket is no longer counted',
    )
    open.push(await openSocket(wsUrl(stack, '/live/e'), headers))
    t.pass('a closed socket frees its place')
  },
)

t.test(
  'an instance holds at most server.maxWebSockets sockets, anonymous or not: one more is a 503 with Retry-After',
  async (t) => {
    const upstream = await wsUpstream(t)
    const stack = await startStack(t, {
      routes: () => [
        route('/live', upstream.url, { websocket: true }),
        route('/public', upstream.url, { token: 'none', csrf: false, websocket: true }),
      ],
      config: { maxWebSockets: 2 },
    })
    const open: WebSocket[] = []
    t.teardown(() => {
      for (const socket of open) socket.terminate()
    })
    // No cookie, no Origin: what a script sends to a `token: none` route.
    open.push(await openSocket(wsUrl(stack, '/public/a'), {}))
    open.push(await openSocket(wsUrl(stack, '/public/b'), {}))
    const anonymous = (await openSocket(wsUrl(stack, '/public/c'), {}).catch((e) => e)) as Refused
    t.equal(anonymous.status, 503)
    t.equal(anonymous.headers['retry-after'], '5')
    t.match(JSON.parse(anonymous.body), { error: 'websocket_capacity' })
    const { jar } = await login(stack.gateway.url)
    const user = (await openSocket(wsUrl(stack, '/live/d'), browserHeaders(stack, jar)).catch(
      (e) => e,
    )) as Refused
    t.equal(user.status, 503, 'a signed-in user on another route is refused as well')
    t.equal(upstream.upgrades.length, 2)
    const text = await metrics(stack)
    t.match(text, 'gatehouse_websocket_upgrades_refused_total{route="/public",limit="instance_limit"} 1')
    t.match(text, 'gatehouse_websocket_upgrades_refused_total{route="/live",limit="instance_limit"} 1')
    t.match(text, 'gatehouse_websockets_open{route="/public"} 2')
  },
)

t.test('an upgrade the upstream refuses gives its place back', async (t) => {
  const stack = await startStack(t, {
    // Nothing listens there: every handshake fails.
    routes: () => [route('/live', 'http://127.0.0.1:9', { websocket: true })],
    config: { sessionMaxWebSockets: 1 },
  })
  const { jar } = await login(stack.gateway.url)
  for (let i = 0; i < 3; i++) {
    const refused = (await openSocket(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar)).catch(
      (e) => e,
    )) as Refused
    t.equal(refused.status, 502, `attempt ${i + 1}: the upstream's failure, not the session's limit`)
  }
})
