import type { ClientRequest } from 'node:http'
import t, { type Test } from 'tap'
import { browserGet, holdingUpstream } from '../helpers/abandoning.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { followLoginFlow, jarFetch, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import {
  CLIENT,
  childrenOf,
  ERROR,
  one,
  type ReceivedSpan,
  receiveSpans,
  SERVER,
} from '../helpers/otlp-receiver.js'
import { defaultRoutes, startStack } from '../helpers/stack.js'
import { until } from '../helpers/websocket.js'

/**
 * A request whose browser goes away before the answer is complete still
 * ends its server span, once: @fastify/otel ends it only in onSend or
 * onResponse, and on that path neither runs, so the span was never
 * exported while the upstream call under it was, an orphan naming a
 * parent no collector ever received.
 */
const receiver = await receiveSpans(t)

t.beforeEach(() => receiver.clear())

const serverSpansOf = (route: string) =>
  receiver.spans.filter((s) => s.kind === SERVER && s.attributes['http.route'] === route)

/** HTTP semantic conventions: a request that could not be answered in full is an error, with its error.type. */
function assertEndedAsClosed(t: Test, span: ReceivedSpan): void {
  t.equal(span.attributes['error.type'], 'connection_closed', 'error.type names what ended it')
  t.equal(span.status.code, ERROR, 'a request not answered in full is an error')
  t.notOk(span.status.message, 'with no description: error.type says it')
}

t.test(
  'a proxied request abandoned before the upstream answers: its server span ends, without a status code',
  async (t) => {
    const upstream = await holdingUpstream(t, () => {})
    const stack = await startStack(t, {
      config: { tracing: { enabled: true } },
      routes: (echo) => [...defaultRoutes(echo), route('/api/slow', upstream.url)],
    })
    const { jar } = await login(stack.gateway.url)
    const url = `${stack.gateway.url}/api/slow/x`
    const browser = browserGet(url, jar.header(url) ?? '')
    await upstream.arrival
    browser.destroy()
    // The gateway aborts the upstream call when the browser's connection closes.
    await upstream.release
    await stack.close() // flushes the exporter

    const server = one(serverSpansOf('/api/slow/*'), 'server span of the abandoned request')
    t.equal(server.name, 'GET /api/slow/*')
    // Conditionally required "if and only if one was sent": none was.
    t.notOk('http.response.status_code' in server.attributes, 'no status code: nothing was sent')
    assertEndedAsClosed(t, server)
    const upstreamCall = one(
      receiver.spans.filter(
        (s) => s.kind === CLIENT && String(s.attributes['url.full']).startsWith(upstream.url),
      ),
      'upstream call',
    )
    t.same(
      childrenOf(receiver.spans, server).filter((s) => s.kind === CLIENT),
      [upstreamCall],
      'the upstream call is its child, not an orphan',
    )
  },
)

t.test('a proxied answer abandoned mid-body: its server span keeps the status that was sent', async (t) => {
  const upstream = await holdingUpstream(t, (res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('the first part')
  })
  const stack = await startStack(t, {
    config: { tracing: { enabled: true } },
    routes: (echo) => [...defaultRoutes(echo), route('/api/slow', upstream.url)],
  })
  const { jar } = await login(stack.gateway.url)
  const url = `${stack.gateway.url}/api/slow/x`
  const browser = browserGet(url, jar.header(url) ?? '')
  browser.once('response', () => browser.destroy())
  await upstream.release
  await stack.close()

  const server = one(serverSpansOf('/api/slow/*'), 'server span of the abandoned answer')
  t.equal(server.attributes['http.response.status_code'], 200, 'the head was sent: its status is recorded')
  assertEndedAsClosed(t, server)
})

t.test(
  'a sign-in callback abandoned while the IdP answers: its span ends once, at the close, and nothing complains',
  async (t) => {
    const stack = await startObservedStack(t, { config: { tracing: { enabled: true } } })
    const jar = new CookieJar()
    const start = await jarFetch(jar, `${stack.gateway.url}/auth/login`)
    const callbackUrl = await followLoginFlow(jar, start.location!, 'alice')
    let browser: ClientRequest | undefined
    // The browser leaves once the code is being redeemed; the IdP then
    // answers, and the callback completes the login and sends its redirect
    // to no one: @fastify/otel's onSend ends the span it knows of again.
    stack.idp.setTokenEndpointDelay(() => {
      browser?.destroy()
      return 300
    })
    browser = browserGet(callbackUrl, jar.header(callbackUrl) ?? '')
    t.ok(await until(() => stack.lines.some((l) => l.msg === 'login completed')), 'the login completed')
    await stack.close()

    const server = one(serverSpansOf('/auth/callback'), 'callback server span')
    t.notOk('http.response.status_code' in server.attributes, 'ended at the close, before its redirect')
    assertEndedAsClosed(t, server)
    t.ok(
      childrenOf(receiver.spans, server).some((s) => String(s.attributes['url.full']).endsWith('/token')),
      "the code's redemption is under it",
    )
    t.same(
      stack.lines.filter((l) => l.msg.startsWith('OpenTelemetry:')).map((l) => l.msg),
      [],
      'no span was ended twice, nor changed once ended',
    )
  },
)
