/**
 * The session watch knows a socket only once both legs are open, and the
 * upstream's handshake comes first, up to the route's `timeout` after the
 * guard read the session. A logout during it was a hint about a socket the
 * watch did not know yet: the browser was answered 101 for a session
 * already gone, and the socket stayed open until the next re-check.
 *
 * With the store unreachable, a socket stayed open for as long as the
 * outage lasted, past its session's `absoluteTimeout`, which nothing
 * extends and the watch had read: "nothing keeps a session past
 * `absoluteTimeout`" held only while the store answered.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { WebSocketServer } from 'ws'
import { route, TestClock } from '../../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../../helpers/login.js'
import { startRedis } from '../../helpers/redis.js'
import { startStack } from '../../helpers/stack.js'
import { BOUND, browserHeaders, closed, openSocket, wsUpstream, wsUrl } from '../../helpers/websocket.js'
import { pollUntil } from '../../helpers/within.js'

/** A re-check no test outlives: a socket closed within BOUND was not closed by the timer. */
const NEVER = 600_000 // ms

/** A `ws` upstream that holds each handshake until the test lets it complete. */
async function heldUpstream(t: Test) {
  const held: ((accept: boolean) => void)[] = []
  const waiting: (() => void)[] = []
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (_info: { req: { headers: IncomingHttpHeaders } }, done: (accept: boolean) => void) => {
      held.push(done)
      for (const wake of waiting.splice(0)) wake()
    },
  })
  await new Promise<void>((resolve) => wss.once('listening', resolve))
  wss.on('connection', (socket) => socket.on('error', () => {}))
  t.teardown(async () => {
    for (const client of wss.clients) client.terminate()
    await new Promise((resolve) => wss.close(resolve))
  })
  return {
    url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    /** The next handshake the upstream holds, its completion in hand. */
    async dialled(): Promise<(accept: boolean) => void> {
      while (held.length === 0) await new Promise<void>((resolve) => waiting.push(resolve))
      return held.shift()!
    },
  }
}

t.test('a logout while the upstream handshake is under way closes the socket once it opens', async (t) => {
  const upstream = await heldUpstream(t)
  const stack = await startStack(t, {
    routes: () => [route('/live', upstream.url, { websocket: true })],
    gateway: { websocketRecheck: NEVER },
  })
  const { jar } = await login(stack.gateway.url)
  const { logoutUrl } = (await apiCall(jar, `${stack.gateway.url}/auth/user`)).json<{ logoutUrl: string }>()
  const opening = openSocket(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar))
  const accept = await upstream.dialled()
  t.equal((await jarFetch(jar, `${stack.gateway.url}${logoutUrl}`)).status, 200, 'logged out during the dial')
  accept(true)
  const browser = await opening
  t.teardown(() => browser.terminate())
  t.same(await closed(browser), { code: 4401, reason: 'session ended' }, 'closed at once, not at a re-check')
})

t.test('with the store unreachable, a socket still closes at its session absoluteTimeout', async (t) => {
  const redis = await startRedis({ args: [] })
  t.teardown(() => redis.stop())
  const clock = new TestClock()
  const upstream = await wsUpstream(t)
  const stack = await startStack(t, {
    routes: () => [route('/live', upstream.url, { websocket: true })],
    config: { store: redis.url, keyPrefix: redis.prefix, idleTimeout: 40_000, absoluteTimeout: 50_000 },
    gateway: { now: clock.now, websocketRecheck: 50 },
  })
  const { jar } = await login(stack.gateway.url)
  const browser = await openSocket(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar))
  t.teardown(() => browser.terminate())
  // A sweep has read the session: the watch has seen its absolute expiry.
  const store = stack.gateway.app.gatehouse.stores.sessions
  const get = store.get.bind(store)
  let reads = 0
  store.get = (...args) => {
    reads++
    return get(...args)
  }
  const before = reads
  await pollUntil(async () => reads > before, BOUND, 'no re-check read the session')
  await redis.kill()
  t.teardown(() => redis.restart())
  clock.advance(30_000)
  // Two re-checks since: each failed to read, and closed nothing.
  const failed = reads
  await pollUntil(async () => reads >= failed + 2, BOUND, 'no re-check tried the store')
  t.equal(browser.readyState, browser.OPEN, 'a store it cannot read is no verdict before the absolute expiry')
  const end = closed(browser)
  clock.advance(21_000)
  t.same(await end, { code: 4401, reason: 'session ended' }, 'closed at absoluteTimeout, store or no store')
})
