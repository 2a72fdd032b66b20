import t from 'tap'
import { GatewayMetrics } from '../../src/server/metrics.js'
import { route } from '../helpers/gateway.js'
import { configText, startReloadable } from '../helpers/reloadable.js'
import { until } from '../helpers/websocket.js'

/**
 * Every metric labelled by route kept the series of every route any config
 * had, however long ago a reload removed it: a config generator that
 * versions its paths (`/api/v41`) grew /metrics, and the registry's heap,
 * by some twenty lines a removed route, until the process restarted. A
 * route's series now end once no app serves it, as a removed client
 * certificate's gauge does; a route kept across reloads keeps counting.
 */
t.test(
  "a reload that removes a route ends that route's series; the routes it keeps go on counting",
  async (t) => {
    const gone = 'http://127.0.0.1:1' // nothing listens: an unreachable upstream
    const routes = (upstream: string, extra: string[]) => [
      route('/kept', upstream, { token: 'none', csrf: false }),
      ...extra.map((path) => route(path, path === '/down' ? gone : upstream, { token: 'none', csrf: false })),
    ]
    const stack = await startReloadable(t, (upstream) => routes(upstream, ['/removed', '/down']))
    const { running, url } = stack
    const scrape = () => running.app.gatehouse.metrics.registry.metrics()
    const lines = async (label: string) => (await scrape()).split('\n').filter((l) => l.includes(label))
    for (const path of ['/kept/x', '/removed/x', '/down/x'])
      await (await fetch(`${url}${path}`)).arrayBuffer()
    t.ok((await lines('route="/removed')).length > 0, 'the route has series while served')
    t.match(
      (await lines('route="/down')).join('\n'),
      /gatehouse_upstream_errors_total\{route="\/down",kind="unreachable"\} 1/,
      'and so has its upstream error',
    )

    const reload = async (extra: string[]) => {
      stack.configMap.write(configText({ ...stack.input, routes: routes(stack.upstream.url, extra) }))
      // The watch may have applied the file first (a late event of the
      // previous swap runs a reload that reads this one): then this finds
      // it running. Either way the file's routes are served after it.
      t.match(await running.reload(), { result: /^(applied|unchanged)$/ })
    }
    await reload([])
    t.ok(
      await until(async () => (await lines('route="/removed')).length === 0),
      'the removed route has no series once the app that served it has closed',
    )
    t.same(await lines('route="/down'), [], 'nor has its upstream error')
    await (await fetch(`${url}/kept/x`)).arrayBuffer()
    t.match(
      (await lines('gatehouse_http_requests_total{route="/kept/*"')).join('\n'),
      /status="200"\} 2/,
      'the kept route counts on from before the reload',
    )

    // Twenty reloads, each serving a new path once: /metrics stays as it was.
    await reload(['/v0'])
    await (await fetch(`${url}/v0/x`)).arrayBuffer()
    // The versioned routes' lines only: a reload the watch ran first
    // ('unchanged' above) brings series of its own outcome.
    const versioned = async () => (await lines('route="/v')).length
    const before = await versioned()
    for (let n = 1; n <= 20; n++) {
      await reload([`/v${n}`])
      await (await fetch(`${url}/v${n}/x`)).arrayBuffer()
    }
    t.ok(
      await until(async () => (await versioned()) <= before),
      `/metrics holds one versioned route's series, not twenty-one (${await versioned()} lines, ${before} before)`,
    )
  },
)

t.test('the app that closes last keeps its series, for the scrape a shutdown still answers', async (t) => {
  const metrics = new GatewayMetrics()
  const retired = metrics.servedLabels()
  const running = metrics.servedLabels()
  retired.serve('route', '/old/*')
  retired.serve('route', '/shared/*')
  running.serve('route', '/shared/*')
  for (const route of ['/old/*', '/shared/*']) metrics.observeRequest(route, 'GET', 200, 0.01)
  metrics.upstreamErrors.inc({ route: '/old', kind: 'timeout' })
  retired.serve('route', '/old')
  const requests = async () =>
    (await metrics.registry.metrics())
      .split('\n')
      .filter((l) => l.startsWith('gatehouse_http_requests_total{'))
  await retired.close()
  t.same(await requests(), ['gatehouse_http_requests_total{route="/shared/*",method="GET",status="200"} 1'])
  t.notMatch(await metrics.registry.metrics(), 'route="/old"', 'its upstream errors too')
  await running.close()
  t.same(await requests(), ['gatehouse_http_requests_total{route="/shared/*",method="GET",status="200"} 1'])
})
