import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { type CookieJar, CookieJar as CookieJarClass } from '../helpers/cookie-jar.js'
import { CLIENT_SECRET, route, SESSION_SECRET, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { CLIENT, childrenOf, ERROR, one, receiveSpans, SERVER } from '../helpers/otlp-receiver.js'
import { REFUSED_URL } from '../helpers/ports.js'
import { defaultRoutes, startStack } from '../helpers/stack.js'
import { browserHeaders, openSocket, wsUpstream, wsUrl } from '../helpers/websocket.js'
import { pollUntil } from '../helpers/within.js'

const receiver = await receiveSpans(t)

const serverSpans = (name: string) => receiver.spans.filter((s) => s.kind === SERVER && s.name === name)
const named = (name: string) => receiver.spans.filter((s) => s.name === name)
/** The traceparent header an upstream saw, split (W3C Trace Context §3.2). */
const parent = (header: string | string[] | undefined) => {
  // Node joins repeated headers with a comma: two traceparents arrive as one string.
  if (typeof header !== 'string' || header.includes(','))
    throw new Error(`expected one traceparent, got ${JSON.stringify(header)}`)
  const [version, traceId, spanId, flags] = header.split('-')
  return { version, traceId, spanId, flags }
}

const BROWSER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const BROWSER_TRACEPARENT = `00-${BROWSER_TRACE}-00f067aa0ba902b7-01`
/** What a browser may send: W3C Trace Context and W3C Baggage. */
const BROWSER_CONTEXT = {
  traceparent: BROWSER_TRACEPARENT,
  tracestate: 'vendor=browser',
  baggage: 'userId=alice,isAdmin=true',
}

t.beforeEach(() => receiver.clear())

t.test('a login and an API call: span tree, route names, IdP and upstream calls, propagation', async (t) => {
  const stack = await startStack(t, { config: { tracing: { enabled: true } } })
  const base = stack.gateway.url
  // What the IdP's token endpoint received, as the provider saw the request.
  const idpSaw: (string | undefined)[] = []
  stack.idp.provider.on('grant.success', (ctx: { get(name: string): string }) => {
    idpSaw.push(ctx.get('traceparent') || undefined)
  })
  const { jar, callbackUrl } = await login(base)
  const code = new URL(callbackUrl).searchParams.get('code')!
  // Path parameters (a servlet's `;jsessionid=`) and the browser's User-Agent go upstream as sent.
  const api = await apiCall(
    jar,
    `${base}/api/orders/42;jsessionid=path-param-secret;bare-param-secret?code=query-secret-value&page=2&bare-secret-value`,
    { headers: { 'user-agent': 'browser-agent-secret/1.0' } },
  )
  t.equal(api.status, 200)
  const seen = stack.upstream.requests.at(-1)!
  await stack.close() // flushes the exporter

  t.ok(
    receiver.contentTypes.every((c) => c.startsWith('application/json')),
    'OTLP/HTTP JSON',
  )
  t.ok(
    receiver.spans.every((s) => s.service === 'gatehouse'),
    'service.name defaults to gatehouse',
  )

  // The callback: one server span named by its route, the token exchange under it.
  const callback = one(serverSpans('GET /auth/callback'), 'callback span')
  t.equal(callback.attributes['http.route'], '/auth/callback')
  t.equal(callback.attributes['http.request.method'], 'GET')
  t.equal(callback.attributes['http.response.status_code'], 302)
  t.equal(callback.attributes['url.path'], '/auth/callback', 'url.path holds no query')
  t.equal(callback.attributes['url.scheme'], 'http', 'url.scheme, which the conventions require')
  const idpCalls = childrenOf(receiver.spans, callback).filter((s) => s.kind === CLIENT)
  const token = idpCalls.find((s) => String(s.attributes['url.full']).endsWith('/token'))
  t.ok(token, 'the code exchange is a client span under the callback')
  t.equal(token?.attributes['http.request.method'], 'POST')
  t.equal(token?.attributes['http.response.status_code'], 200)
  t.equal(token?.attributes['server.address'], '127.0.0.1')
  t.equal(idpSaw.length, 1, 'one grant: the code exchange')
  const toIdp = parent(idpSaw[0])
  t.equal(toIdp.traceId, callback.traceId, "the IdP's token endpoint got the callback's trace")
  t.equal(toIdp.spanId, token?.spanId, 'naming the client span of that call')

  // The login redirect is its own trace.
  const loginSpan = one(serverSpans('GET /auth/login'), 'login span')
  t.not(loginSpan.traceId, callback.traceId)

  // The API call: named by the route template, never the path or its query.
  const apiSpan = one(
    receiver.spans.filter(
      (s) => s.kind === SERVER && s.attributes['http.route']?.toString().startsWith('/api/orders'),
    ),
    'API span',
  )
  t.notMatch(apiSpan.name, /42|query|page/, 'no identifier or query in the name')
  t.notMatch(String(apiSpan.attributes['url.path']), /42|\?/, 'nor in url.path')
  const children = childrenOf(receiver.spans, apiSpan)
  const read = one(
    children.filter((s) => s.name === 'gatehouse.session.read'),
    'session read',
  )
  t.equal(read.attributes['gatehouse.session.found'], true)
  const upstreamCall = one(
    children.filter((s) => s.kind === CLIENT),
    'upstream call',
  )
  t.equal(upstreamCall.attributes['http.response.status_code'], 200)
  t.equal(
    upstreamCall.attributes['url.query'],
    '?code=REDACTED&page=REDACTED&REDACTED',
    'query values redacted, a bare one (a value with no key) whole',
  )
  t.match(
    upstreamCall.attributes['url.path'],
    /\/42;jsessionid=REDACTED;REDACTED$/,
    'path parameter values redacted like query values, a bare one whole',
  )
  t.match(
    upstreamCall.attributes['url.full'],
    /^http:\/\/127\.0\.0\.1:\d+\/.*\/42;jsessionid=REDACTED;REDACTED\?code=REDACTED&page=REDACTED&REDACTED$/,
    'and in url.full',
  )
  t.equal(
    upstreamCall.attributes['user_agent.original'],
    undefined,
    "the browser's User-Agent is not recorded",
  )
  t.equal(seen.headers['user-agent'], 'browser-agent-secret/1.0', 'though the upstream gets it')

  // What the upstream saw: one traceparent naming the gateway's client span.
  const tp = parent(seen.headers.traceparent)
  t.equal(tp.version, '00')
  t.equal(tp.traceId, apiSpan.traceId, 'the upstream joins the request trace')
  t.equal(tp.spanId, upstreamCall.spanId, "and its parent is the gateway's upstream span")
  t.equal(tp.flags, '01', 'sampled')

  // No token, code, cookie or secret anywhere in what was exported.
  const exported = receiver.bodies.join('\n')
  const bearer = seen.authorization!.slice('Bearer '.length)
  const cookies = jar.header(base) ?? ''
  const secrets = {
    'access token': bearer,
    'authorization code': code,
    'query value': 'query-secret-value',
    'bare query value': 'bare-secret-value',
    'path parameter value': 'path-param-secret',
    'bare path parameter': 'bare-param-secret',
    'user agent': 'browser-agent-secret',
    'client secret': CLIENT_SECRET,
    'session secret': SESSION_SECRET,
    ...Object.fromEntries(
      cookies
        .split(';')
        .map((c) => c.trim().split('=').slice(1).join('='))
        .filter((v) => v.length >= 16)
        .map((v, i) => [`cookie ${i}`, v]),
    ),
  }
  t.ok(cookies.length > 0 && bearer.length > 0 && code.length > 0, 'the scan has something to look for')
  for (const [what, value] of Object.entries(secrets))
    t.notOk(exported.includes(value), `no ${what} in any span`)
})

t.test('a refresh storm: one refresh span, the other requests wait on it', async (t) => {
  const clock = new TestClock()
  const stack = await startStack(t, {
    accessTokenTtl: 60,
    config: { tracing: { enabled: true } },
    gateway: { now: clock.now },
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  await apiCall(jar, `${base}/api/orders`)
  stack.idp.resetStats()
  clock.advance(61_000)
  const storm = 50
  const joined = async () =>
    (await stack.gateway.app.gatehouse.metrics.refreshJoins.get()).values[0]?.value ?? 0
  // The refresh is answered once every other request of the storm has
  // joined it: a fixed delay let a loaded machine, slow to read the storm,
  // see the refresh out before the rest came in.
  stack.idp.holdTokenAnswers(() => pollUntil(async () => (await joined()) >= storm - 1, 30_000))
  const answers = await Promise.all(Array.from({ length: storm }, () => apiCall(jar, `${base}/api/orders`)))
  stack.idp.holdTokenAnswers()
  t.same(new Set(answers.map((a) => a.status)), new Set([200]))
  t.equal(stack.idp.stats.refreshGrants, 1)
  const joins = await joined()
  await stack.close()

  const refresh = one(named('gatehouse.token.refresh'), 'refresh span')
  t.equal(refresh.attributes['gatehouse.refresh.outcome'], 'success')
  t.equal(refresh.attributes['gatehouse.token.resource'], '', 'the login token: no resource')
  t.equal(refresh.attributes['gatehouse.idp'], 'default', "the provider's name: the oidc: shorthand's")
  const grant = childrenOf(receiver.spans, refresh).filter((s) => s.kind === CLIENT)
  t.equal(grant.length, 1, 'one IdP call under the refresh')
  t.match(String(grant[0]?.attributes['url.full']), /\/token$/)
  const waits = named('gatehouse.refresh.wait')
  t.equal(waits.length, storm - 1, 'every other request waited on the refresh')
  t.equal(waits.length, joins, 'one wait span per join the metrics counted')
  for (const w of waits) {
    t.equal(w.attributes['gatehouse.refresh.wait'], 'flight')
    t.type(w.attributes['gatehouse.refresh.waited_ms'], 'number')
  }
  const stormSpans = receiver.spans.filter(
    (s) => s.kind === SERVER && s.attributes['http.route'] === '/api/orders',
  )
  const inStorm = new Set(stormSpans.map((s) => s.spanId))
  t.ok(
    waits.every((w) => receiver.spans.some((s) => s.spanId === w.parentSpanId && inStorm.has(s.spanId))),
    "each wait is a child of its request's server span",
  )
})

t.test('an upstream error: the client span and the server span say so', async (t) => {
  // An upstream that answers 500 itself: the gateway throws nothing.
  const failing = createServer((_req, res) => res.writeHead(500).end())
  await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve))
  t.teardown(() => failing.close())
  const failingUrl = `http://127.0.0.1:${(failing.address() as AddressInfo).port}`
  const stack = await startStack(t, {
    config: { tracing: { enabled: true } },
    routes: (upstream) => [
      ...defaultRoutes(upstream),
      route('/api/refused', REFUSED_URL),
      route('/api/failing', failingUrl),
    ],
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  const answer = await apiCall(jar, `${base}/api/refused/x`)
  t.equal(answer.status, 502)
  t.equal((await apiCall(jar, `${base}/api/failing/x`)).status, 500)
  await stack.close()
  const failed = one(
    receiver.spans.filter((s) => s.kind === SERVER && s.attributes['http.route'] === '/api/failing/*'),
    "the upstream's own 500",
  )
  t.equal(failed.status.code, ERROR, "an upstream's 5xx passed on is the server span's error too")
  t.equal(failed.attributes['error.type'], '500', 'the status code: the gateway made no answer of its own')
  t.equal(failed.attributes['gatehouse.error.code'], undefined)

  const server = one(
    receiver.spans.filter((s) => s.kind === SERVER && s.attributes['http.route'] === '/api/refused/*'),
    'server span',
  )
  t.equal(server.name, 'GET /api/refused/*')
  t.equal(server.attributes['http.response.status_code'], 502)
  t.equal(server.status.code, ERROR, 'a 5xx is an error')
  // HTTP semantic conventions: error.type on a failed request, here the
  // gateway's own identifier of the failure; no description the code says.
  t.equal(server.attributes['error.type'], 'GATEHOUSE_ERR_UPSTREAM_UNREACHABLE')
  t.notOk(server.status.message, 'no status description')
  const upstream = one(
    childrenOf(receiver.spans, server).filter((s) => s.kind === CLIENT),
    'upstream span',
  )
  t.equal(upstream.attributes['error.type'], 'ECONNREFUSED')
  t.equal(upstream.status.code, ERROR)
})

t.test("a 4xx is the client's error, not the server's: its server span's status stays unset", async (t) => {
  const stack = await startStack(t, { config: { tracing: { enabled: true } } })
  const base = stack.gateway.url
  const anonymous = new CookieJarClass()
  t.equal((await apiCall(anonymous, `${base}/api/orders/1`)).status, 401)
  t.equal((await fetch(`${base}/auth/callback?code=c&state=s`)).status, 400)
  await stack.close()
  for (const route of ['/api/orders/*', '/auth/callback']) {
    const server = one(
      receiver.spans.filter((s) => s.kind === SERVER && s.attributes['http.route'] === route),
      `${route} server span`,
    )
    t.ok(Number(server.attributes['http.response.status_code']) >= 400, `${route}: a 4xx`)
    // OTel HTTP semantic conventions: a SERVER span's status MUST be left unset for a 4xx.
    t.equal(server.status.code, 0, `${route}: status unset`)
    t.equal(server.status.message, undefined, `${route}: and no message`)
  }
})

t.test('a request no route matches: named by its method alone, with an empty url.path', async (t) => {
  const stack = await startStack(t, { config: { tracing: { enabled: true } } })
  t.equal((await fetch(`${stack.gateway.url}/no/such/4711?code=c`)).status, 404)
  await stack.close()
  const server = one(
    receiver.spans.filter(
      (s) => s.kind === SERVER && Number(s.attributes['http.response.status_code']) === 404,
    ),
    '404 server span',
  )
  // No route, so no template; named by its path, the span would hold
  // whatever identifiers or codes a client put there.
  t.equal(server.name, 'GET')
  t.equal(server.attributes['http.route'], undefined, 'no http.route')
  t.equal(server.attributes['url.path'], '', 'url.path empty')
  t.equal(server.status.code, 0, 'status unset, as for any 4xx')
  t.notMatch(JSON.stringify(server), /4711|code=c/, 'nothing of the path or query')
})

t.test(
  'a method the HTTP conventions do not list is recorded as _OTHER, the original beside it',
  async (t) => {
    const stack = await startStack(t, { config: { tracing: { enabled: true } } })
    const { jar } = await login(stack.gateway.url)
    t.ok(await browserCall(jar, `${stack.gateway.url}/api/orders/1`, {}, 'PROPFIND'), 'answered')
    await stack.close()
    const server = one(
      receiver.spans.filter(
        (s) => s.kind === SERVER && s.attributes['http.request.method_original'] === 'PROPFIND',
      ),
      'PROPFIND server span',
    )
    // Semantic conventions (HTTP spans): an unknown method MUST be `_OTHER`, and
    // the span is named `HTTP` (and its route), so a client cannot mint span names.
    t.equal(server.attributes['http.request.method'], '_OTHER')
    const route = server.attributes['http.route']
    t.equal(server.name, route === undefined ? 'HTTP' : `HTTP ${route}`)
  },
)

t.test(
  'a WebSocket upgrade: its server span ends at the 101, and the upstream joins its trace',
  async (t) => {
    const ws = await wsUpstream(t)
    const stack = await startStack(t, {
      config: { tracing: { enabled: true } },
      routes: (upstream) => [...defaultRoutes(upstream), route('/api/live', ws.url, { websocket: true })],
    })
    const { jar } = await login(stack.gateway.url)
    const socket = await openSocket(wsUrl(stack, '/api/live/feed'), {
      ...browserHeaders(stack, jar),
      ...BROWSER_CONTEXT,
    })
    socket.terminate()
    await stack.close()
    const server = one(
      receiver.spans.filter((s) => s.kind === SERVER && s.attributes['http.route'] === '/api/live/*'),
      'upgrade server span',
    )
    t.equal(server.attributes['http.response.status_code'], 101)
    const tp = parent(ws.upgrades[0]!.traceparent)
    t.equal(tp.traceId, server.traceId, "the upstream's handshake carries the request's trace")
    t.equal(tp.spanId, server.spanId, 'with the server span as its parent')
    t.equal(ws.upgrades[0]!.tracestate, undefined, "and neither the browser's tracestate")
    t.equal(ws.upgrades[0]!.baggage, undefined, 'nor its baggage')
  },
)

/**
 * An API call through node:http, not fetch: fetch is undici, which this
 * process's SDK instruments too, and it would add a traceparent of its own.
 */
function browserCall(
  jar: CookieJar,
  url: string,
  headers: Record<string, string>,
  method = 'GET',
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method, headers: { ...headers, 'x-csrf': '1', cookie: jar.header(url) ?? '' } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

t.test("a browser's traceparent starts no trace of its choosing unless trusted", async (t) => {
  const stack = await startStack(t, { config: { tracing: { enabled: true } } })
  const base = stack.gateway.url
  const { jar } = await login(base)
  const status = await browserCall(jar, `${base}/api/orders`, BROWSER_CONTEXT)
  t.equal(status, 200)
  const seen = stack.upstream.requests.at(-1)!
  await stack.close()
  const api = one(
    receiver.spans.filter((s) => s.kind === SERVER && s.attributes['http.route'] === '/api/orders'),
    'API span',
  )
  t.not(api.traceId, BROWSER_TRACE, 'a new trace')
  t.equal(api.parentSpanId, '', 'with no parent')
  t.equal(parent(seen.headers.traceparent).traceId, api.traceId, "the upstream sees the gateway's trace only")
  t.equal(seen.headers.tracestate, undefined, "and not the browser's tracestate")
  t.equal(seen.headers.baggage, undefined, 'nor its baggage')
})

t.test('with tracing.trustIncoming the trace continues from the traceparent', async (t) => {
  const ws = await wsUpstream(t)
  const stack = await startStack(t, {
    config: { tracing: { enabled: true, trustIncoming: true } },
    routes: (upstream) => [...defaultRoutes(upstream), route('/api/live', ws.url, { websocket: true })],
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  t.equal(await browserCall(jar, `${base}/api/orders`, BROWSER_CONTEXT), 200)
  const seen = stack.upstream.requests.at(-1)!
  const socket = await openSocket(wsUrl(stack, '/api/live/feed'), {
    ...browserHeaders(stack, jar),
    ...BROWSER_CONTEXT,
  })
  socket.terminate()
  await stack.close()
  const api = one(
    receiver.spans.filter((s) => s.kind === SERVER && s.attributes['http.route'] === '/api/orders'),
    'API span',
  )
  t.equal(api.traceId, BROWSER_TRACE)
  t.equal(api.parentSpanId, '00f067aa0ba902b7')
  const tp = parent(seen.headers.traceparent)
  t.equal(tp.traceId, BROWSER_TRACE, 'one traceparent, ours, in the same trace')
  t.not(tp.spanId, '00f067aa0ba902b7')
  // W3C Trace Context §3.3: the vendors' entries travel with the trace they
  // belong to, so a trusted sender's tracestate reaches every upstream.
  t.equal(seen.headers.tracestate, 'vendor=browser', "its tracestate goes on with it, as Gatehouse's")
  t.equal(seen.headers.baggage, undefined, 'the browser chose the trace, not what every upstream reads')
  const upgrade = ws.upgrades[0]!
  t.equal(parent(upgrade.traceparent).traceId, BROWSER_TRACE, 'an upgrade too: one traceparent, ours')
  t.equal(upgrade.tracestate, 'vendor=browser', 'with the tracestate')
  t.equal(upgrade.baggage, undefined, 'and no baggage')
})

t.test('service.name from OTEL_RESOURCE_ATTRIBUTES is kept; gatehouse is only the default', async (t) => {
  process.env.OTEL_RESOURCE_ATTRIBUTES = 'service.name=checkout-bff,deployment.environment.name=prod'
  t.teardown(() => {
    delete process.env.OTEL_RESOURCE_ATTRIBUTES
  })
  const stack = await startStack(t, { config: { tracing: { enabled: true } } })
  await fetch(`${stack.gateway.url}/healthz`)
  await login(stack.gateway.url)
  await stack.close()
  t.ok(receiver.spans.length > 0)
  // OTel SDK environment spec: only OTEL_SERVICE_NAME takes precedence over it.
  t.ok(
    receiver.spans.every((s) => s.service === 'checkout-bff'),
    `service.name as set (${[...new Set(receiver.spans.map((s) => s.service))]})`,
  )
})
