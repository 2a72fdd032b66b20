import { request as httpRequest } from 'node:http'
import t from 'tap'
import { storeUnavailable } from '../../src/redis/connection.js'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { REFUSED_URL } from '../helpers/ports.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'
import { defaultRoutes, startStack } from '../helpers/stack.js'

/** The value of one sample in Prometheus text format, 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (!(rest.startsWith('{') || rest.startsWith(' '))) continue
    if (Object.entries(labels).every(([k, v]) => rest.includes(`${k}="${v}"`)))
      return Number(line.split(' ').at(-1))
  }
  return 0
}

t.test(
  'the counters move: requests, refreshes, joins, client-token cache, upstream errors, sessions, store errors',
  async (t) => {
    const clock = new TestClock()
    const dead = REFUSED_URL
    const stack = await startStack(t, {
      routes: (upstream) => [...defaultRoutes(upstream), route('/api/dead', dead)],
      gateway: { now: clock.now },
    })
    const base = stack.gateway.url
    const { jar } = await login(base)
    await apiCall(jar, `${base}/api/orders`)
    clock.advance(61_000)
    await Promise.all(Array.from({ length: 20 }, () => apiCall(jar, `${base}/api/orders`)))
    await apiCall(jar, `${base}/api/reports`)
    await apiCall(jar, `${base}/api/reports`)
    t.equal((await apiCall(jar, `${base}/api/dead`)).status, 502)

    // The listener itself is tested in metrics-listener.test.ts.
    const { registry } = stack.gateway.app.gatehouse.metrics
    const m = await registry.metrics()
    t.ok(
      sample(m, 'gatehouse_http_requests_total', { route: '/api/orders/*', status: '200' }) +
        sample(m, 'gatehouse_http_requests_total', { route: '/api/orders', status: '200' }) >=
        21,
    )
    t.ok(sample(m, 'gatehouse_http_request_duration_seconds_count', { status: '200' }) > 0)
    t.equal(sample(m, 'gatehouse_token_refreshes_total', { outcome: 'success' }), 1)
    t.equal(sample(m, 'gatehouse_token_refresh_duration_seconds_count'), 1)
    const joins = sample(m, 'gatehouse_refresh_joins_total')
    t.ok(joins >= 1 && joins <= 19, `${joins} requests joined the one refresh`)
    t.equal(sample(m, 'gatehouse_client_token_cache_total', { result: 'miss' }), 1)
    t.equal(sample(m, 'gatehouse_client_token_cache_total', { result: 'hit' }), 1)
    t.equal(sample(m, 'gatehouse_upstream_errors_total', { route: '/api/dead', kind: 'unreachable' }), 1)
    t.equal(sample(m, 'gatehouse_active_sessions'), 1)
    t.ok(sample(m, 'gatehouse_process_cpu_user_seconds_total') > 0, 'process metrics too')
    t.notMatch(m, /Bearer|eyJ/, 'no credentials in metrics')

    const store = stack.gateway.app.gatehouse.stores.sessions
    const { get, peek } = store
    // Both ways in: the guard peeks first, and reads when that cannot answer.
    store.peek = () => {
      throw storeUnavailable(new Error('injected'))
    }
    store.get = async () => {
      throw storeUnavailable(new Error('injected'))
    }
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 503)
    Object.assign(store, { get, peek })
    const after = await registry.metrics()
    t.equal(sample(after, 'gatehouse_session_store_errors_total'), 1)
  },
)

/** A request with any method Node's parser takes (fetch refuses some), its status once answered. */
function send(url: string, method: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method, headers: { 'x-csrf': '1' } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    request.on('error', reject)
    request.end()
  })
}

t.test("a client's methods and an upstream's statuses make a bounded set of series", async (t) => {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  upstream.answer((res, url) => {
    res.writeHead(Number(new URL(url, 'http://x').searchParams.get('status')))
    res.end()
  })
  const stack = await startStack(t, { routes: () => [route('/pub', upstream.url, { token: 'none' })] })
  const base = stack.gateway.url
  // Routes take the seven methods `routes[].methods` lists; the others reach no route, and are
  // counted as `unmatched`, labelled with whatever the client sent.
  for (const method of ['PROPFIND', 'MKCOL', 'M-SEARCH', 'PURGE', 'POST'])
    t.equal(await send(`${base}/pub/x?status=200`, method), method === 'POST' ? 200 : 404, method)
  for (const status of [299, 404, 599])
    t.equal(await send(`${base}/pub/x?status=${status}`, 'GET'), status, `${status} reaches the browser`)
  // Past 599 an upstream's status is no HTTP status (RFC 9110 §15): answered 502.
  for (const status of [600, 999])
    t.equal(await send(`${base}/pub/x?status=${status}`, 'GET'), 502, `${status} is answered 502`)

  const text = await stack.gateway.app.gatehouse.metrics.registry.metrics()
  const series = text.split('\n').filter((l) => l.startsWith('gatehouse_http_requests_total{'))
  const values = (label: string) =>
    [...new Set(series.map((l) => new RegExp(`${label}="([^"]*)"`).exec(l)![1]))].sort()
  t.same(values('method'), ['GET', 'POST', '_OTHER'], 'the methods the conventions list, the rest _OTHER')
  t.same(values('status'), ['200', '2xx', '404', '502', '5xx'], 'named codes; the others by class')
  t.notMatch(text, /PROPFIND|MKCOL|M-SEARCH|PURGE|"299"|"599"|"600"|"999"/, 'no raw method or unnamed status')
})
