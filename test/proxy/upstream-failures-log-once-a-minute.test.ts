import t from 'tap'
import { REPEATED_LINE_INTERVAL } from '../../src/repeated-lines.js'
import { route } from '../helpers/gateway.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { REFUSED_URL } from '../helpers/ports.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'
import { browserHeaders, openSocket, type Refused, wsUrl } from '../helpers/websocket.js'

// Each failed upstream call wrote a warning, every time: on a route that
// needs no session, anyone could write one line per request, by a WebSocket
// upgrade to a path its upstream refuses (a 404: the upstream's everyday
// answer, which an HTTP call passes on unlogged) or by any call while its
// upstream is down or cuts its answers short, and so fill the disk at line
// rate. The error handler's second line per failure was already gone; now
// the one left is written once a minute per route and cause, as the store's
// and the IdP's outage lines are, the next carrying how many were not
// written. The metrics still count each.
t.test('failed upstream calls log one line a minute per route and cause', async (t) => {
  const cutting = await scriptedUpstream()
  t.teardown(() => cutting.close())
  // The head and part of the body, then the connection cut.
  cutting.answer((res) => {
    res.writeHead(200, { 'content-length': '100' })
    res.write('partial', () => res.socket?.destroy())
  })
  const stack = await startObservedStack(t, {
    routes: (upstream) => [
      route('/api/dead', REFUSED_URL, { token: 'none' }),
      route('/api/refusing', upstream, { token: 'none', websocket: true }),
      route('/api/cut', cutting.url, { token: 'none' }),
    ],
  })
  const base = stack.gateway.url
  const warnings = () => stack.lines.filter((line) => line.level >= 40)
  const call = async () =>
    ((await (await fetch(`${base}/api/dead`, { headers: { 'x-csrf': '1' } })).json()) as { error: string })
      .error
  // The echo upstream answers an upgrade with 200, not 101.
  const upgrade = () =>
    openSocket(wsUrl(stack, '/api/refusing/nowhere'), browserHeaders(stack)).then(
      () => 'accepted',
      (answer: Refused) => (JSON.parse(answer.body) as { error: string }).error,
    )
  const cut = () =>
    fetch(`${base}/api/cut`, { headers: { 'x-csrf': '1' } }).then(
      (res) =>
        res.text().then(
          () => 'whole',
          () => 'cut',
        ),
      () => 'cut',
    )
  const sequentially = async (n: number, what: () => Promise<string>) => {
    const seen = new Set<string>()
    for (let i = 0; i < n; i++) seen.add(await what())
    return seen
  }

  const answers = await Promise.all(Array.from({ length: 20 }, call))
  t.same(new Set(answers), new Set(['upstream_unreachable']), 'every call is answered')
  t.equal(warnings().length, 1, 'one line for 20 failed calls, and no second line from the error handler')
  t.match(warnings()[0], {
    msg: 'upstream request failed',
    route: '/api/dead',
    upstreamError: 'ECONNREFUSED',
  })
  t.notOk('repeated' in warnings()[0]!, 'the first line has nothing held to count')

  t.same(await sequentially(20, upgrade), new Set(['upstream_upgrade_refused']), 'every upgrade is answered')
  t.same(await sequentially(20, cut), new Set(['cut']), 'every answer is cut short')
  t.equal(warnings().length, 3, 'one line for 20 refused upgrades, one for 20 answers cut short')
  t.match(warnings()[1], {
    msg: 'websocket upstream handshake failed',
    route: '/api/refusing',
    failure: 'refused',
  })
  t.match(warnings()[2], { msg: 'upstream response failed mid-body' })

  stack.clock.advance(REPEATED_LINE_INTERVAL)
  await call()
  await upgrade()
  await cut()
  t.equal(warnings().length, 6, 'a minute on, each is written again')
  t.match(warnings().slice(3), [
    { msg: 'upstream request failed', route: '/api/dead', repeated: 19 },
    { msg: 'websocket upstream handshake failed', route: '/api/refusing', repeated: 19 },
    { msg: 'upstream response failed mid-body', repeated: 19 },
  ])
  t.match(
    await stack.metrics('gatehouse_upstream_errors_total{'),
    ['gatehouse_upstream_errors_total{route="/api/dead",kind="unreachable"} 21'],
    'the metric counts every failure',
  )
})
