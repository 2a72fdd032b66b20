import t from 'tap'
import { GatewayMetrics } from '../../src/server/metrics.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { configText, startReloadable } from '../helpers/reloadable.js'
import { pollUntil } from '../helpers/within.js'

const ORDERS = 'https://orders.example/'
const REPORTS = 'https://reports.example/'

/**
 * The series labelled by a provider (`idp`), a route's resource
 * (`resource`) or an exchange's audience (`audience`) stayed after a reload
 * removed the provider or the resource, until a restart, where a route's
 * end with the last app that served it: a config generator that renamed
 * its resources or providers grew /metrics by each. They now end the same
 * way, once no app's config names them; the ones the new config keeps
 * count on.
 */
t.test(
  "a reload that removes a provider and a route's resource ends their series; what it keeps counts on",
  async (t) => {
    const resources = {
      resources: { [ORDERS]: { scopes: ['orders.read'] }, [REPORTS]: { scopes: ['reports.read'] } },
    }
    const orders = (upstream: string, resource: string) => [route('/api/orders', upstream, { resource })]
    const stack = await startReloadable(t, (upstream) => orders(upstream, ORDERS), {
      watch: false,
      resourceIndicators: resources,
      second: { resourceIndicators: resources },
      input: (issuer, second) => ({
        identityProviders: [
          { name: 'a', issuer },
          { name: 'b', issuer: second },
        ],
      }),
    })
    const { running, url } = stack
    const scrape = async () => (await fetch(running.metricsUrl!)).text()
    const lines = async (label: string) => (await scrape()).split('\n').filter((l) => l.includes(label))
    const atA = (await login(url, { params: { idp: 'a' } })).jar
    const atB = (await login(url, { params: { idp: 'b' } })).jar
    for (const jar of [atA, atB]) t.equal((await apiCall(jar, `${url}/api/orders/x`)).status, 200)
    const ofB = (await lines('idp="b"')).join('\n')
    t.match(ofB, 'gatehouse_logins_total{refresh_token="issued",idp="b"} 1', 'the provider has series')
    t.match(ofB, `gatehouse_token_refreshes_total{outcome="success",resource="${ORDERS}",idp="b"} 1`)
    t.match(ofB, 'gatehouse_token_refresh_duration_seconds_count{idp="b"} 1')
    t.ok((await lines(`resource="${ORDERS}"`)).length > 0, 'and so has the resource')

    stack.configMap.write(
      configText({
        ...stack.input,
        routes: orders(stack.upstream.url, REPORTS),
        identityProviders: [{ name: 'a', issuer: stack.idp.issuer }],
      }),
    )
    t.match(await running.reload(), { result: 'applied' })
    const gone = async () =>
      (await lines('idp="b"')).length === 0 && (await lines(`resource="${ORDERS}"`)).length === 0
    await pollUntil(gone, 10_000).catch(() => {})
    t.same(
      await lines('idp="b"'),
      [],
      'the removed provider has no series once the app that had it has closed',
    )
    t.same(await lines(`resource="${ORDERS}"`), [], 'nor has the removed resource')
    t.match(
      (await lines('idp="a"')).join('\n'),
      /gatehouse_logins_total\{refresh_token="issued",idp="a"\} 1/,
      'the provider kept keeps its series',
    )
    await login(url, { params: { idp: 'a' } })
    t.match(
      (await lines('gatehouse_logins_total{')).join('\n'),
      /\{refresh_token="issued",idp="a"\} 2/,
      'and counts on from before the reload',
    )
  },
)

t.test('each label a config names ends with the last app serving its value, a histogram too', async (t) => {
  const metrics = new GatewayMetrics()
  const retired = metrics.servedLabels()
  const running = metrics.servedLabels()
  for (const served of [retired, running]) served.serve('idp', 'kept')
  retired.serve('idp', 'old')
  retired.serve('audience', 'https://old.example/')
  running.serve('audience', 'https://kept.example/')
  for (const idp of ['kept', 'old']) {
    metrics.refreshDuration.observe({ idp }, 0.1)
    metrics.exchanges.inc({ outcome: 'success', audience: `https://${idp}.example/`, idp })
  }
  const text = () => metrics.registry.metrics()
  await retired.close()
  t.notMatch(
    await text(),
    'idp="old"',
    'the values only the retired app served end, the histogram buckets too',
  )
  t.notMatch(await text(), 'old.example', 'its audience too')
  t.match(await text(), 'gatehouse_token_refresh_duration_seconds_count{idp="kept"} 1')
  t.match(await text(), 'audience="https://kept.example/",idp="kept"} 1')
  await running.close()
  t.match(await text(), 'idp="kept"', 'the app that closes last keeps its series')
})
