import { Counter, Histogram, Registry } from 'prom-client'
import t from 'tap'
import { RequestMetrics } from '../../src/server/request-metrics.js'

const BOUNDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** The same figures through prom-client's own Counter and Histogram, the reference. */
function reference() {
  const registry = new Registry()
  const requests = new Counter({
    name: 'gatehouse_http_requests_total',
    help: 'Requests answered, by route, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  })
  const duration = new Histogram({
    name: 'gatehouse_http_request_duration_seconds',
    help: 'Time to answer a request, by route, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: BOUNDS,
    registers: [registry],
  })
  return {
    registry,
    observe(route: string, method: string, status: number, seconds: number) {
      requests.inc({ route, method, status })
      duration.observe({ route, method, status }, seconds)
    },
  }
}

const observations: [string, string, number, number][] = [
  ['/api/orders/*', 'GET', 200, 0.0004],
  ['/api/orders/*', 'GET', 200, 0.001], // on a bound: counted in it
  ['/api/orders/*', 'GET', 200, 0.0123],
  ['/api/orders/*', 'POST', 201, 0.3],
  ['/api/orders/*', 'GET', 502, 12], // past the highest bound: only +Inf
  ['/auth/user', 'GET', 401, 0],
  ['unmatched', 'GET', 404, 0.002],
]

t.test('renders exactly what prom-client renders for the same requests', async (t) => {
  const registry = new Registry()
  const ours = new RequestMetrics(registry, BOUNDS)
  const theirs = reference()
  t.equal(await registry.metrics(), await theirs.registry.metrics(), 'before any request')
  for (const [route, method, status, seconds] of observations) {
    ours.observe(route, method, status, seconds)
    theirs.observe(route, method, status, seconds)
  }
  const text = await registry.metrics()
  // Series may come in another order; Prometheus does not care.
  const lines = (body: string) => body.split('\n').sort()
  t.same(lines(text), lines(await theirs.registry.metrics()))
  t.match(text, /^gatehouse_http_requests_total\{route="\/api\/orders\/\*",method="GET",status="200"\} 3$/m)
})

t.test('resetMetrics empties it, as it does prom-client metrics', async (t) => {
  const registry = new Registry()
  const ours = new RequestMetrics(registry, BOUNDS)
  ours.observe('/api', 'GET', 200, 0.01)
  registry.resetMetrics()
  t.notMatch(await registry.metrics(), /route=/)
})

t.test(
  'a client picks no method label and an upstream no status label: both come from fixed sets',
  async (t) => {
    const registry = new Registry()
    const ours = new RequestMetrics(registry, BOUNDS)
    // Node's parser takes some thirty methods; an upstream may answer any status Node can write (100 to 999).
    const methods = ['GET', 'POST', 'QUERY', 'PROPFIND', 'MKCOL', 'M-SEARCH', 'PURGE', 'SOURCE']
    for (const method of methods)
      for (let status = 200; status <= 999; status++) ours.observe('/api', method, status, 0.01)
    const text = await registry.metrics()
    const series = text.split('\n').filter((l) => l.startsWith('gatehouse_http_requests_total{'))
    const labels = (name: string) => new Set(series.map((l) => new RegExp(`${name}="([^"]*)"`).exec(l)![1]))
    t.same(
      [...labels('method')].sort(),
      ['GET', 'POST', 'QUERY', '_OTHER'].sort(),
      'unlisted methods are _OTHER',
    )
    const statuses = labels('status')
    t.ok(
      statuses.has('200') && statuses.has('404') && statuses.has('503'),
      'the codes HTTP names keep their number',
    )
    t.ok(
      statuses.has('2xx') && statuses.has('5xx'),
      `an unnamed one in 200-599 is its class: ${[...statuses]}`,
    )
    t.ok(statuses.has('other'), 'and one past 599 is other')
    t.notOk(statuses.has('299') || statuses.has('600') || statuses.has('999'))
    t.ok(series.length <= 4 * 80, `${series.length} series for one route`)
    t.match(text, /^gatehouse_http_requests_total\{route="\/api",method="_OTHER",status="2xx"\} 450$/m)
  },
)
