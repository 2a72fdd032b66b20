import t from 'tap'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { childrenOf, receiveSpans, SERVER } from '../helpers/otlp-receiver.js'
import { startRedis } from '../helpers/redis.js'
import { startStack } from '../helpers/stack.js'

const receiver = await receiveSpans(t)
const redis = await startRedis()
t.teardown(() => redis.stop())

t.beforeEach(() => receiver.clear())

t.test("a request's log lines carry its trace_id and span_id", async (t) => {
  const stack = await startObservedStack(t, { config: { tracing: { enabled: true }, accessLog: true } })
  const { lines } = stack
  const { jar } = await login(stack.gateway.url)
  t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders`)).status, 200)
  await stack.close()
  const api = receiver.spans.find((s) => s.kind === SERVER && s.attributes['http.route'] === '/api/orders')
  t.ok(api, 'the API call was traced')
  const line = lines.find((l) => l.msg === 'request' && l.path === '/api/orders')
  t.ok(line, 'its access log line')
  t.equal(line?.trace_id, api?.traceId, 'names its trace')
  t.equal(line?.span_id, api?.spanId, 'and its server span')
})

t.test(
  "each request's access line carries its own trace, not the one that opened the upstream connection",
  async (t) => {
    const stack = await startObservedStack(t, { config: { tracing: { enabled: true }, accessLog: true } })
    const { lines } = stack
    const { jar } = await login(stack.gateway.url)
    const before = stack.upstream.requests.length
    // Sequential calls reuse the route's pooled upstream connection.
    for (const path of ['/api/orders/a', '/api/orders/b', '/api/orders/c', '/api/orders/d'])
      t.equal((await apiCall(jar, `${stack.gateway.url}${path}`)).status, 200)
    await stack.close()
    // Answered in order: the n-th access line of the route is the n-th call.
    const access = lines.filter((l) => l.msg === 'request' && l.path === '/api/orders/*')
    const seen = stack.upstream.requests.slice(before)
    t.equal(access.length, 4)
    t.equal(seen.length, 4)
    seen.forEach((call, i) => {
      const traceId = String(call.headers.traceparent).split('-')[1]
      t.equal(
        access[i]?.trace_id,
        traceId,
        `${call.path}: the access line names the trace the upstream joined`,
      )
    })
  },
)

t.test('with OTEL_TRACES_EXPORTER=none, no log line carries the all-zero ids', async (t) => {
  process.env.OTEL_TRACES_EXPORTER = 'none'
  t.teardown(() => {
    delete process.env.OTEL_TRACES_EXPORTER
  })
  const stack = await startObservedStack(t, { config: { tracing: { enabled: true }, accessLog: true } })
  const { lines } = stack
  const { jar } = await login(stack.gateway.url)
  t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders`)).status, 200)
  await stack.close()
  t.ok(
    lines.some((l) => l.msg === 'request'),
    'access lines were written',
  )
  // W3C Trace Context §3.2.2.3: an all-zero trace-id is invalid.
  t.notOk(
    lines.some((l) => /^0+$/.test(String(l.trace_id)) || /^0+$/.test(String(l.span_id))),
    'no invalid ids',
  )
})

t.test('without tracing, log lines carry no trace fields', async (t) => {
  const stack = await startObservedStack(t, { config: { accessLog: true } })
  const { lines } = stack
  const { jar } = await login(stack.gateway.url)
  await apiCall(jar, `${stack.gateway.url}/api/orders`)
  await stack.close()
  t.ok(lines.length > 0)
  t.notOk(
    lines.some((l) => 'trace_id' in l || 'span_id' in l),
    'no trace_id or span_id',
  )
  t.equal(receiver.spans.length, 0, 'and nothing was exported')
})

t.test('the session read shows whether the local cache answered', async (t) => {
  const stack = await startStack(t, {
    config: { tracing: { enabled: true }, store: redis.url, keyPrefix: `${redis.prefix}cache:` },
  })
  // Until Redis confirms tracking, the cache answers nothing.
  await (stack.gateway.app.gatehouse.stores.sessions as { whenReady?: () => Promise<void> }).whenReady?.()
  const { jar } = await login(stack.gateway.url)
  receiver.clear()
  t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders`)).status, 200)
  t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders`)).status, 200)
  await stack.close()
  const reads = receiver.spans.filter((s) => s.name === 'gatehouse.session.read')
  t.equal(reads.length, 2, 'one session read per API call')
  const results = reads.flatMap((read) =>
    childrenOf(receiver.spans, read)
      .filter((s) => s.name === 'gatehouse.session.cache')
      .map((s) => s.attributes['gatehouse.session.cache']),
  )
  t.ok(results.includes('miss'), 'a read the cache could not answer is a miss')
  t.ok(results.includes('hit'), 'and the read after it a hit')
  t.equal(results.length, reads.length, 'one cache span under each read')
})
