import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { defaultRoutes, startStack } from '../helpers/stack.js'
import { browserHeaders, openSocket, wsUpstream, wsUrl } from '../helpers/websocket.js'

/**
 * With tracing off, the default, a browser's `traceparent`, `tracestate`
 * and `baggage` went upstream as it sent them: an upstream that traces
 * joined whatever trace, and took whatever sampling decision, the browser
 * chose (W3C Trace Context §3), and read its baggage as if a service had
 * set it. Tracing on, Gatehouse sends its own trace context, never the
 * browser's headers; with `tracing.trustIncoming` the trace it continues
 * keeps its tracestate, which goes on with it (test/tracing/span-tree.test.ts).
 */
const BROWSER = {
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  tracestate: 'vendor=browser',
  baggage: 'userId=alice,isAdmin=true',
}

t.test('tracing off: an API call reaches the upstream without the browser trace context', async (t) => {
  const stack = await startStack(t)
  const { jar } = await login(stack.gateway.url)
  t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders/1`, { headers: BROWSER })).status, 200)
  const seen = stack.upstream.requests.at(-1)!.headers
  t.equal(seen.traceparent, undefined, 'no traceparent')
  t.equal(seen.tracestate, undefined, 'no tracestate')
  t.equal(seen.baggage, undefined, 'no baggage')
})

t.test('tracing off: a WebSocket upgrade reaches the upstream without them either', async (t) => {
  const ws = await wsUpstream(t)
  const stack = await startStack(t, {
    routes: (upstream) => [...defaultRoutes(upstream), route('/api/live', ws.url, { websocket: true })],
  })
  const { jar } = await login(stack.gateway.url)
  const socket = await openSocket(wsUrl(stack, '/api/live/feed'), {
    ...browserHeaders(stack, jar),
    ...BROWSER,
  })
  socket.terminate()
  const seen = ws.upgrades[0]!
  t.equal(seen.traceparent, undefined, 'no traceparent')
  t.equal(seen.tracestate, undefined, 'no tracestate')
  t.equal(seen.baggage, undefined, 'no baggage')
})
