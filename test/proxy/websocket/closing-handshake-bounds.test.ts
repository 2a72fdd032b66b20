import t, { type Test } from 'tap'
import { CLOSE_GRACE, closeTimeout } from '../../../src/proxy/websocket/closing.js'
import type { CookieJar } from '../../helpers/cookie-jar.js'
import { route } from '../../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../../helpers/login.js'
import { type Stack, startStack } from '../../helpers/stack.js'
import {
  BOUND,
  browserHeaders,
  closed,
  openSocket,
  stalledBehind,
  until,
  wsUpstream,
  wsUrl,
} from '../../helpers/websocket.js'

const MiB = 1024 * 1024
const PING_INTERVAL = 500 // ms

// The gateway holds a closing leg to CLOSE_GRACE from when its close frame
// has been written, to CLOSE_GRACE without a byte either way before then,
// and to `ws`'s close timer (`closeTimeout`, two ping intervals and a
// grace) in all. These tests pin what that rests on besides: `ws` calls
// `close()` on the leg to answer a peer's close frame (else the grace would
// not start for it), and honours `closeTimeout`, which its types do not
// declare (else the bound would be its own 30 s).

t.test(
  'a browser that sends its close frame, then reads nothing and never hangs up, is dropped within a grace and the upstream told its code',
  async (t) => {
    const upstream = await wsUpstream(t)
    const stack = await startStack(t, { routes: () => [route('/live', upstream.url, { websocket: true })] })
    const { jar } = await login(stack.gateway.url)
    const browser = await openSocket(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar))
    t.teardown(() => browser.terminate())
    const atUpstream = closed(await upstream.next())
    const started = performance.now()
    browser.close(1000, 'bye')
    // The gateway's answer, and its end of the connection, are never read.
    browser.pause()
    t.same(await atUpstream, { code: 1000, reason: 'bye' }, 'the upstream is told what the browser said')
    const took = performance.now() - started
    t.ok(
      took < CLOSE_GRACE + 1_000,
      `once the browser's leg was dropped, ${Math.round(took)} ms after its close`,
    )
  },
)

/**
 * Larger than all the kernel's buffers between the gateway and a browser
 * that reads nothing can take: Linux grows a socket's receive buffer up to
 * `tcp_rmem`'s maximum (32 MiB on these machines) beside a send buffer of
 * up to 4 MiB, more than the 16 MiB this once was.
 */
const QUEUED = 48 * MiB

/**
 * A signed-in browser that stopped reading, on a route pinging every
 * `pingInterval` ms, with the gateway holding most of a QUEUED-byte message
 * for it; the upstream's end of the socket.
 */
async function queuedBehind(t: Test, pingInterval: number) {
  const upstream = await wsUpstream(t)
  const stack = await startStack(t, {
    routes: () => [route('/live', upstream.url, { websocket: { pingInterval, maxMessage: 64 * MiB } })],
    gateway: { websocketRecheck: 100 },
  })
  const { jar } = await login(stack.gateway.url)
  const { browser, upstreamLeg } = await stalledBehind(
    t,
    upstream,
    wsUrl(stack, '/live/feed'),
    browserHeaders(stack, jar),
    QUEUED,
  )
  return { stack, jar, browser, upstreamLeg }
}

/** Ends the session of `jar`: its sockets close with 4401. */
async function logout(t: Test, stack: Stack, jar: CookieJar): Promise<void> {
  const { logoutUrl } = (await apiCall(jar, `${stack.gateway.url}/auth/user`)).json<{ logoutUrl: string }>()
  t.equal((await jarFetch(jar, `${stack.gateway.url}${logoutUrl}`)).status, 200)
}

t.test(
  'a browser that reads nothing of what is queued ahead of the close frame is dropped within two graces of the close',
  async (t) => {
    // A close timer of 12 s, two ping intervals and a grace.
    const { stack, jar, upstreamLeg } = await queuedBehind(t, 5_000)
    const atUpstream = closed(upstreamLeg)
    const started = performance.now()
    await logout(t, stack, jar)
    t.same(await atUpstream, { code: 4401, reason: 'session ended' }, 'the upstream is told at once')
    t.ok(await until(() => stack.gateway.app.gatehouse.lasting.sockets.open === 0), 'the browser is dropped')
    const took = performance.now() - started
    // One to two graces without a byte either way (ClosingLeg), not the
    // close timer; the time the logout took besides.
    t.ok(took < 3 * CLOSE_GRACE, `${Math.round(took)} ms after the logout began`)
  },
)

t.test(
  'a browser that keeps sending but never reads what is queued ahead of the close frame is dropped at the close timer',
  async (t) => {
    const { stack, jar, browser, upstreamLeg } = await queuedBehind(t, PING_INTERVAL)
    const atUpstream = closed(upstreamLeg)
    // Bytes on the connection each time, which the gateway reads for the
    // browser's close frame: not a stall, though the gateway's close frame
    // goes nowhere.
    const sending = setInterval(() => browser.send('still here'), 50)
    t.teardown(() => clearInterval(sending))
    const browserEnd = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('not dropped within 30 s')), 30_000)
      browser.once('close', () => {
        clearTimeout(timer)
        resolve(performance.now())
      })
    })
    const started = performance.now()
    await logout(t, stack, jar)
    t.same(await atUpstream, { code: 4401, reason: 'session ended' }, 'the upstream is told at once')
    const bound = closeTimeout(PING_INTERVAL)
    const took = (await browserEnd) - started
    t.ok(took >= bound, `the browser was not dropped before the close timer (${Math.round(took)} ms)`)
    t.ok(took < bound + BOUND, "and was dropped at it, not at ws's own 30 s")
  },
)
