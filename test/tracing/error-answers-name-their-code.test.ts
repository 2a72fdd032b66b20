/**
 * The gateway's own error answers, traced: every refusal and failure the
 * catalogue names had a server span that said only its status. A 5xx's
 * `error.type` was the status code (`503`), though the gateway knew which
 * of its eleven 503s it was (the store, the IdP, a logout still carried
 * out, WebSocket capacity), and a 4xx said nothing of why (a missing
 * anti-forgery header, a cross-site request, an image at /auth/login).
 * The HTTP semantic conventions let `error.type` be "a component-specific
 * error identifier" and recommend a domain-specific attribute beside it:
 * each answer now carries its catalogue code in `gatehouse.error.code`, and
 * a 5xx's `error.type` is that code. A 4xx's status and `error.type` stay
 * unset (a SERVER span's 4xx is not an error). The log lines of the same
 * requests carry their trace and span, and nothing secret is exported.
 */
import { request as httpRequest } from 'node:http'
import { exportJWK, generateKeyPair } from 'jose'
import t, { type Test } from 'tap'
import type { PaddedTokens } from '../../dev/idp.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, CLIENT_SECRET, cacheHeardStoreOutage, route, SESSION_SECRET } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { type LogLine, type ObservedStack, startObservedStack } from '../helpers/observed-stack.js'
import {
  CLIENT,
  childrenOf,
  ERROR,
  one,
  type ReceivedSpan,
  receiveSpans,
  SERVER,
} from '../helpers/otlp-receiver.js'
import { startRedis } from '../helpers/redis.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'
import { browserHeaders, openSocket, wsUpstream, wsUrl } from '../helpers/websocket.js'

const receiver = await receiveSpans(t)

t.beforeEach(() => receiver.clear())

/** Over the default tokens.maxSize (16 KiB). */
const OVER = 20_000
/** What any quote of a padded token would show. */
const PADDING = 'A'.repeat(64)
const BROWSER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const BROWSER_TRACEPARENT = `00-${BROWSER_TRACE}-00f067aa0ba902b7-01`

/** The one server span of `route` that answered `status`. */
function answered(route: string, status: number): ReceivedSpan {
  return one(
    receiver.spans.filter(
      (s) =>
        s.kind === SERVER &&
        s.attributes['http.route'] === route &&
        s.attributes['http.response.status_code'] === status,
    ),
    `${status} server span of ${route}`,
  )
}

/** A 4xx: the client's, so no error status and no error.type; its code says which refusal. */
function assertRefusal(t: Test, span: ReceivedSpan, code: string): void {
  t.equal(span.attributes['gatehouse.error.code'], code, `${span.name}: the catalogue code`)
  t.equal(span.status.code, 0, `${span.name}: status unset, as for any 4xx`)
  t.equal(span.attributes['error.type'], undefined, `${span.name}: no error.type`)
}

/** A 5xx: an error whose error.type is the catalogue code, with no description. */
function assertFailure(t: Test, span: ReceivedSpan, code: string): void {
  t.equal(span.status.code, ERROR, `${span.name}: a 5xx is an error`)
  t.equal(span.attributes['error.type'], code, `${span.name}: error.type is the catalogue code`)
  t.equal(span.attributes['gatehouse.error.code'], code, `${span.name}: as gatehouse.error.code`)
  t.notOk(span.status.message, `${span.name}: no description`)
}

/** The lines `match` picks all carry `span`'s trace, and at least one its own span id. */
function assertLoggedIn(t: Test, lines: LogLine[], match: (l: LogLine) => boolean, span: ReceivedSpan) {
  const found = lines.filter(match)
  t.ok(found.length > 0, `${span.name}: logged`)
  t.ok(
    found.every((l) => l.trace_id === span.traceId),
    `${span.name}: every line carries its trace_id`,
  )
  t.ok(
    found.some((l) => l.span_id === span.spanId),
    `${span.name}: the request's line its span_id`,
  )
}

/** Neither the export nor the log holds any of `secrets`, each at least 16 characters. */
function assertNothingSecret(t: Test, lines: LogLine[], secrets: Record<string, string>): void {
  const exported = receiver.bodies.join('\n')
  const logged = JSON.stringify(lines)
  for (const [what, value] of Object.entries(secrets)) {
    t.ok(value.length >= 16, `${what}: the scan has something to look for`)
    t.notOk(exported.includes(value), `no ${what} in any span`)
    t.notOk(logged.includes(value), `no ${what} in any log line`)
  }
}

/** The long values of a jar's cookies for `url`. */
function cookieValues(jar: CookieJar, url: string): Record<string, string> {
  return Object.fromEntries(
    (jar.header(url) ?? '')
      .split(';')
      .map((c) => c.trim().split('=').slice(1).join('='))
      .filter((v) => v.length >= 16)
      .map((v, i) => [`cookie ${i}`, v]),
  )
}

/** A request through node:http: the test's own fetch is undici, which this process traces too. */
function send(url: string, method: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test(
  'the anti-forgery, cross-site and navigation refusals name their code; an upstream 431 is a 502 that names its own',
  async (t) => {
    const refusing = await scriptedUpstream()
    t.teardown(() => refusing.close())
    refusing.answer((res) => res.writeHead(431).end())
    const stack = await startObservedStack(t, {
      config: { tracing: { enabled: true }, accessLog: true },
      routes: (upstream) => [
        route('/api/orders', upstream),
        // A server-rendered page for the signed-in user, if any.
        route('/pages', upstream, { token: 'optional-user', csrf: false }),
        route('/api/big', refusing.url),
      ],
    })
    const base = stack.gateway.url
    const { jar } = await login(base)
    const cookie = jar.header(base) ?? ''
    const browser = { cookie, traceparent: BROWSER_TRACEPARENT }
    const sibling = {
      'sec-fetch-site': 'same-site',
      'sec-fetch-mode': 'cors',
      origin: 'https://evil.example',
    }
    t.equal(await send(`${base}/pages/x?q=1`, 'POST', { ...browser, ...sibling }), 403)
    const image = { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' }
    t.equal(await send(`${base}/auth/login?returnTo=/x`, 'GET', { ...browser, ...image }), 403)
    t.equal(await send(`${base}/api/orders/1`, 'GET', browser), 403, 'no anti-forgery header')
    t.equal(await send(`${base}/api/big/1`, 'GET', { ...browser, 'x-csrf': '1' }), 502)
    const bearer = refusing.seen[0]!.headers.authorization!.slice('Bearer '.length)
    await stack.close() // flushes the exporter

    const crossSite = answered('/pages/*', 403)
    t.equal(crossSite.name, 'POST /pages/*', 'named by the route, never the path or query')
    assertRefusal(t, crossSite, 'GATEHOUSE_ERR_CROSS_SITE')
    const navigation = answered('/auth/login', 403)
    assertRefusal(t, navigation, 'GATEHOUSE_ERR_NOT_A_NAVIGATION')
    const antiForgery = answered('/api/orders/*', 403)
    assertRefusal(t, antiForgery, 'GATEHOUSE_ERR_CSRF')
    const tooLarge = answered('/api/big/*', 502)
    assertFailure(t, tooLarge, 'GATEHOUSE_ERR_UPSTREAM_HEADERS_TOO_LARGE')
    t.equal(
      one(
        childrenOf(receiver.spans, tooLarge).filter((s) => s.kind === CLIENT),
        'upstream call',
      ).attributes['http.response.status_code'],
      431,
      "the upstream's 431 under it",
    )
    for (const span of [crossSite, navigation, antiForgery, tooLarge]) {
      t.not(span.traceId, BROWSER_TRACE, `${span.name}: the browser's traceparent is ignored`)
      t.equal(span.parentSpanId, '', `${span.name}: a root`)
      assertLoggedIn(t, stack.lines, (l) => l.reqId !== undefined && l.trace_id === span.traceId, span)
    }
    assertLoggedIn(t, stack.lines, (l) => l.code === 'GATEHOUSE_ERR_NOT_A_NAVIGATION', navigation)
    assertLoggedIn(t, stack.lines, (l) => l.code === 'GATEHOUSE_ERR_UPSTREAM_HEADERS_TOO_LARGE', tooLarge)
    assertNothingSecret(t, stack.lines, {
      'access token': bearer,
      'client secret': CLIENT_SECRET,
      'session secret': SESSION_SECRET,
      ...cookieValues(jar, base),
    })
  },
)

t.test(
  'a refresh refused for its size or by an OAuth error in a 200: 503 that names its code, the refresh and its POST under it',
  async (t) => {
    const padding: { tokens?: PaddedTokens } = {}
    const stack = await startObservedStack(t, {
      accessTokenTtl: 60,
      idp: { quirks: { paddedTokens: (grant) => (grant === 'refresh_token' ? padding.tokens : undefined) } },
      config: { tracing: { enabled: true } },
      routes: (upstream) => [route('/api/orders', upstream), route('/api/other', upstream)],
    })
    const base = stack.gateway.url
    const { jar } = await login(base)
    padding.tokens = { access_token: OVER }
    stack.clock.advance(61_000)
    const oversized = await apiCall(jar, `${base}/api/orders`)
    t.equal(oversized.status, 503)
    t.ok(Number(oversized.headers.get('retry-after')) > 0, 'with Retry-After')
    delete padding.tokens
    stack.clock.advance(10_000)
    // RFC 6749 §4.1.2.1's "cannot serve now", in a 200 where the tokens belong.
    stack.idp.answer('token', {
      grantType: 'refresh_token',
      status: 200,
      body: { error: 'temporarily_unavailable', error_description: 'maintenance' },
    })
    const outage = await apiCall(jar, `${base}/api/other`)
    t.equal(outage.status, 503)
    await stack.close()

    for (const [route, said] of [
      ['/api/orders', { tokenBytes: OVER }],
      ['/api/other', { oauthError: 'temporarily_unavailable' }],
    ] as const) {
      const server = answered(route, 503)
      assertFailure(t, server, 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE')
      const refresh = one(
        childrenOf(receiver.spans, server).filter((s) => s.name === 'gatehouse.token.refresh'),
        'refresh span',
      )
      t.equal(refresh.attributes['gatehouse.refresh.outcome'], 'unavailable')
      t.equal(refresh.attributes['error.type'], 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE')
      const post = one(
        childrenOf(receiver.spans, refresh).filter((s) => s.kind === CLIENT),
        "the IdP's POST",
      )
      t.equal(post.attributes['http.response.status_code'], 200, 'answered, and refused by the gateway')
      // The refresh's own line in the refresh span, the answer's in the server span.
      assertLoggedIn(
        t,
        stack.lines,
        (l) => l.code === 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE' && l.trace_id === server.traceId,
        server,
      )
      t.ok(
        stack.lines.some((l) => l.span_id === refresh.spanId && Object.keys(said).every((k) => k in l)),
        `${route}: the refresh's line is in the refresh span, and says what the IdP answered`,
      )
    }
    assertNothingSecret(t, stack.lines, { padding: PADDING, 'client secret': CLIENT_SECRET })
  },
)

t.test(
  'a logout token delivered again while the first is carried out: 503 logout_in_progress, no token anywhere',
  async (t) => {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true })
    const jwk = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
    const stack = await startObservedStack(t, {
      idp: { signingKey: jwk },
      backchannelLogout: true,
      config: { tracing: { enabled: true } },
    })
    const base = stack.gateway.url
    await login(base, { user: 'dave' })
    const token = await signLogoutToken(
      { issuer: stack.idp.issuer, audience: CLIENT_ID, key: privateKey, kid: 'idp-key' },
      { sub: 'dave' },
    )
    // The first delivery holds at its session delete until the second has been answered.
    const store = stack.gateway.app.gatehouse.stores.sessions
    const remove = store.delete.bind(store)
    let reach!: () => void
    const reached = new Promise<void>((resolve) => {
      reach = resolve
    })
    let release!: () => void
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    store.delete = async (id) => {
      reach()
      await released
      return remove(id)
    }
    t.teardown(() => {
      store.delete = remove
    })
    const deliver = () =>
      jarFetch(new CookieJar(), `${base}/auth/backchannel-logout`, {
        method: 'POST',
        body: new URLSearchParams({ logout_token: token }),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
    const first = deliver()
    await reached
    const again = await deliver()
    t.equal(again.status, 503)
    release()
    t.equal((await first).status, 200)
    await stack.close()

    const server = answered('/auth/backchannel-logout', 503)
    t.equal(server.name, 'POST /auth/backchannel-logout')
    assertFailure(t, server, 'GATEHOUSE_ERR_LOGOUT_IN_PROGRESS')
    t.equal(answered('/auth/backchannel-logout', 200).status.code, 0, 'the first delivery is no error')
    assertLoggedIn(t, stack.lines, (l) => l.code === 'GATEHOUSE_ERR_LOGOUT_IN_PROGRESS', server)
    assertNothingSecret(t, stack.lines, {
      'logout token': token,
      "logout token's signature": token.split('.')[2]!,
      'client secret': CLIENT_SECRET,
    })
  },
)

t.test('the session store down: 503 session_store_unavailable, under it the read that failed', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const stack = await startObservedStack(t, {
    config: { tracing: { enabled: true }, store: redis.url, keyPrefix: redis.prefix },
  })
  const { jar } = await login(stack.gateway.url)
  await redis.kill()
  await cacheHeardStoreOutage(stack.gateway.app)
  const down = await apiCall(jar, `${stack.gateway.url}/api/orders`)
  t.equal(down.status, 503)
  t.ok(Number(down.headers.get('retry-after')) > 0, 'with Retry-After')
  await stack.close()

  const server = answered('/api/orders', 503)
  assertFailure(t, server, 'GATEHOUSE_ERR_STORE_UNAVAILABLE')
  const read = one(
    childrenOf(receiver.spans, server).filter((s) => s.name === 'gatehouse.session.read'),
    'session read',
  )
  t.equal(read.attributes['error.type'], 'GATEHOUSE_ERR_STORE_UNAVAILABLE')
  assertLoggedIn(t, stack.lines, (l) => l.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE', server)
})

t.test(
  'WebSocket upgrades refused: 403 and 401 name their code, 503 websocket_capacity is an error',
  async (t) => {
    const ws = await wsUpstream(t)
    const stack: ObservedStack = await startObservedStack(t, {
      config: { tracing: { enabled: true }, maxWebSockets: 1 },
      routes: (upstream) => [route('/api/orders', upstream), route('/api/live', ws.url, { websocket: true })],
    })
    const { jar } = await login(stack.gateway.url)
    const status = (opening: Promise<unknown>) =>
      opening.then(
        () => 101,
        (refused: { status?: number }) => refused.status,
      )
    const url = wsUrl(stack, '/api/live/feed')
    const headers = browserHeaders(stack, jar)
    t.equal(await status(openSocket(url, { ...headers, origin: 'https://evil.example' })), 403)
    t.equal(await status(openSocket(url, browserHeaders(stack, new CookieJar()))), 401)
    const open = await openSocket(url, headers)
    t.equal(await status(openSocket(url, headers)), 503, 'past server.maxWebSockets')
    open.terminate()
    await stack.close()

    assertRefusal(t, answered('/api/live/*', 403), 'GATEHOUSE_ERR_CROSS_SITE')
    assertRefusal(t, answered('/api/live/*', 401), 'GATEHOUSE_ERR_UNAUTHENTICATED')
    const full = answered('/api/live/*', 503)
    assertFailure(t, full, 'GATEHOUSE_ERR_WEBSOCKET_CAPACITY')
    assertLoggedIn(t, stack.lines, (l) => l.code === 'GATEHOUSE_ERR_WEBSOCKET_CAPACITY', full)
    const upgraded = answered('/api/live/*', 101)
    t.equal(upgraded.attributes['gatehouse.error.code'], undefined, 'the upgrade that was taken names none')
  },
)
