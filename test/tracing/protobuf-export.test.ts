import t from 'tap'
import { CLIENT_SECRET, route, SESSION_SECRET } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { CLIENT, childrenOf, ERROR, one, receiveSpans, SERVER } from '../helpers/otlp-receiver.js'
import { REFUSED_URL } from '../helpers/ports.js'
import { defaultRoutes, startStack } from '../helpers/stack.js'

/**
 * The exporter's default encoding, OTLP/HTTP protobuf (no
 * OTEL_EXPORTER_OTLP_PROTOCOL), decoded by the receiver with the OTLP
 * message types the OpenTelemetry project generates: the same tree as
 * span-tree.test.ts reads from JSON, and the same scan for secrets.
 */
const receiver = await receiveSpans(t, { json: false })

t.test('a login, an API call and a refused upstream, exported as protobuf', async (t) => {
  const stack = await startStack(t, {
    config: { tracing: { enabled: true } },
    routes: (upstream) => [...defaultRoutes(upstream), route('/api/refused', REFUSED_URL)],
  })
  const base = stack.gateway.url
  const { jar, callbackUrl } = await login(base)
  const code = new URL(callbackUrl).searchParams.get('code')!
  t.equal((await apiCall(jar, `${base}/api/orders/42?page=2`)).status, 200)
  const seen = stack.upstream.requests.at(-1)!
  t.equal((await apiCall(jar, `${base}/api/refused/x`)).status, 502)
  await stack.close() // flushes the exporter

  t.ok(receiver.contentTypes.length > 0, 'something was exported')
  t.ok(
    receiver.contentTypes.every((c) => c.startsWith('application/x-protobuf')),
    'as OTLP/HTTP protobuf, the default',
  )
  t.ok(
    receiver.spans.every((s) => s.service === 'gatehouse' && /^[0-9a-f]{32}$/.test(s.traceId)),
    'decoded: service name and trace ids',
  )

  const callback = one(
    receiver.spans.filter((s) => s.kind === SERVER && s.name === 'GET /auth/callback'),
    'callback span',
  )
  t.ok(
    childrenOf(receiver.spans, callback).some(
      (s) => s.kind === CLIENT && String(s.attributes['url.full']).endsWith('/token'),
    ),
    'the code exchange under the callback',
  )
  const api = one(
    receiver.spans.filter((s) => s.kind === SERVER && s.name === 'GET /api/orders/*'),
    'API span',
  )
  t.equal(api.attributes['http.response.status_code'], 200)
  const children = childrenOf(receiver.spans, api)
  t.ok(
    children.some((s) => s.name === 'gatehouse.session.read'),
    'the session read under it',
  )
  const upstreamCall = one(
    children.filter((s) => s.kind === CLIENT),
    'upstream call',
  )
  const [, traceId, spanId] = String(seen.headers.traceparent).split('-')
  t.same([traceId, spanId], [api.traceId, upstreamCall.spanId], "the upstream's traceparent names that call")

  // A failed call: the server span carries the status, no exception; the
  // undici instrumentation's client span records undici's own error.
  const refused = one(
    receiver.spans.filter((s) => s.kind === SERVER && s.name === 'GET /api/refused/*'),
    'refused span',
  )
  t.equal(refused.status.code, ERROR)
  t.same(refused.events, [], 'the server span records no exception')
  const failed = one(
    childrenOf(receiver.spans, refused).filter((s) => s.kind === CLIENT),
    'failed call',
  )
  t.equal(failed.attributes['error.type'], 'ECONNREFUSED')
  t.same(
    failed.events.map((e) => [e.name, e.attributes['exception.message']]),
    [['exception', `connect ECONNREFUSED ${new URL(REFUSED_URL).host}`]],
    "the client span's one event is undici's error, which names the failure only",
  )

  const exported = receiver.bodies.join('\n')
  const secrets = {
    'access token': seen.authorization!.slice('Bearer '.length),
    'authorization code': code,
    'client secret': CLIENT_SECRET,
    'session secret': SESSION_SECRET,
  }
  for (const [what, value] of Object.entries(secrets)) {
    t.ok(value.length >= 8, `the scan has a ${what} to look for`)
    t.notOk(exported.includes(value), `no ${what} in what was exported`)
  }
})
