import t from 'tap'
import { startAudienceStack } from '../helpers/audience-stack.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { apiCall, login } from '../helpers/login.js'
import { receiveSpans, SERVER } from '../helpers/otlp-receiver.js'
import { startStack } from '../helpers/stack.js'
import { pollUntil } from '../helpers/within.js'

const receiver = await receiveSpans(t)

t.test(
  "a token the upstream refuses is refreshed and replayed in the refused request's own trace",
  async (t) => {
    const stack = await startAudienceStack({
      rejectInactive: true,
      routeOptions: { retryOnInvalidToken: true },
      tracing: true,
    })
    t.teardown(() => stack.close())
    const url = stack.urls[0]!
    const api = stack.upstreams.api
    // Alice's call opens the route's pooled upstream connection.
    const alice = (await login(url, { user: 'alice', jar: new CookieJar() })).jar
    t.equal((await apiCall(alice, `${url}/api/alice`)).status, 200)
    // Bob's token is revoked at the IdP: the upstream refuses it, Gatehouse refreshes and replays.
    const bob = stack.jar
    t.equal((await apiCall(bob, `${url}/api/bob-1`)).status, 200)
    const token = api.requests.at(-1)!.authorization!.slice('Bearer '.length)
    await (await stack.idp.provider.AccessToken.find(token))!.destroy()
    stack.idp.resetStats()
    t.equal((await apiCall(bob, `${url}/api/bob-2`)).status, 200)
    t.equal(stack.idp.stats.refreshGrants, 1, 'refreshed once')
    await stack.close()

    const server = receiver.spans.filter((s) => s.kind === SERVER && s.attributes['http.route'] === '/api/*')
    t.equal(server.length, 3, 'one server span per call')
    const bobsTrace = server.at(-1)!.traceId
    const refresh = receiver.spans.filter((s) => s.name === 'gatehouse.token.refresh')
    t.ok(refresh.length >= 1)
    for (const span of refresh) t.equal(span.traceId, bobsTrace, "the refresh is in Bob's trace")
    const calls = api.requests.filter((r) => r.path.endsWith('/bob-2'))
    t.equal(calls.length, 2, 'the refused call and its replay')
    for (const call of calls)
      t.equal(String(call.headers.traceparent).split('-')[1], bobsTrace, "each carries Bob's trace upstream")
  },
)

t.test('a token exchange records its outcome, as a refresh does', async (t) => {
  receiver.clear()
  const stack = await startAudienceStack({ exchange: {}, tracing: true })
  t.teardown(() => stack.close())
  t.equal((await apiCall(stack.jar, `${stack.urls[0]}/ledger/x`)).status, 200)
  await stack.close()
  const exchange = receiver.spans.find((s) => s.name === 'gatehouse.token.exchange')
  t.ok(exchange, 'an exchange span')
  t.equal(exchange?.attributes['gatehouse.exchange.outcome'], 'success')
})

t.test(
  "client-credentials: one fetch span with the IdP's POST under it, and a wait under each request that joined it",
  async (t) => {
    receiver.clear()
    const stack = await startStack(t, { config: { tracing: { enabled: true } } })
    const { jar } = await login(stack.gateway.url)
    receiver.clear()
    // The IdP answers once all six requests have reached the gateway, not
    // after a fixed 300 ms that a loaded machine, slow to send or read the
    // rest, can outlast: then they found the token cached and did not wait.
    let arrived = 0
    stack.gateway.app.server.on('request', () => arrived++)
    const allArrived = pollUntil(async () => arrived >= 6, 30_000)
    stack.idp.holdTokenAnswers(() => allArrived)
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => apiCall(jar, `${stack.gateway.url}/api/reports/x`)),
    )
    stack.idp.holdTokenAnswers()
    await t.resolves(allArrived, 'the six requests reached the gateway while the token was fetched')
    t.same(new Set(answers.map((a) => a.status)), new Set([200]))
    const hits = (await stack.gateway.app.gatehouse.metrics.clientTokenCache.get()).values.find(
      (v) => v.labels.result === 'hit',
    )?.value
    t.notOk(hits, 'no request found the token cached: each came while it was fetched')
    await stack.close()
    const fetches = receiver.spans.filter((s) => s.name === 'gatehouse.token.client')
    t.equal(fetches.length, 1, 'one fetch')
    t.equal(fetches[0]!.attributes['gatehouse.token.resource'], 'scope:reports.read')
    t.ok(
      receiver.spans.some((s) => s.parentSpanId === fetches[0]!.spanId && s.name === 'POST'),
      "the IdP's POST under it",
    )
    const waits = receiver.spans.filter((s) => s.name === 'gatehouse.refresh.wait')
    t.equal(waits.length, 5, 'a wait under each other request')
    t.ok(waits.every((w) => w.attributes['gatehouse.refresh.wait'] === 'flight'))
  },
)
