/**
 * An identity provider that answers the token endpoint with its own
 * Retry-After (RFC 9110 §10.2.3) is waited out as it asks, within bounds:
 * before, the gateway told the browser its catalogue 5 s and asked the IdP
 * again after 5 s, whatever the IdP had said. Now the browser is told what
 * the IdP asked for (at least the catalogue value, at most MAX_RETRY_AFTER
 * and never past the session's tokens.unavailableLimit), the session or
 * client token asks no sooner, and a request kept from the IdP meanwhile
 * is told what is left of the wait. Against the real dev IdP, whose edge
 * answers 503 or 429 with the header, on a hand-moved clock, counting the
 * token requests it saw. The clock is frozen, so the seconds left it reads
 * are the ones the steps leave, however long the machine takes between them.
 */
import t from 'tap'
import { retryAfterOf } from '../../src/errors.js'
import { LEDGER, startAudienceStack } from '../helpers/audience-stack.js'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { browserHeaders, openSocket, type Refused, wsUpstream, wsUrl } from '../helpers/websocket.js'

const CATALOGUE = retryAfterOf('GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE')!
/** src/oidc/retry-after.ts's MAX_RETRY_AFTER: the longest an IdP can make the gateway wait, s. */
const MAX_RETRY_AFTER = 300

/** What the IdP's edge answers token requests of `grantType` with, in oidc-provider's place, until told otherwise. */
function outage(status: number, headers: Record<string, string>, grantType = 'refresh_token') {
  return { status, headers, body: 'unavailable', grantType }
}

for (const status of [503, 429]) {
  t.test(
    `an IdP ${status} with Retry-After: 30 is waited out 30 s, and the browser is told so`,
    async (t) => {
      const stack = await startObservedStack(t, { accessTokenTtl: 60 })
      stack.clock.freeze()
      const base = stack.gateway.url
      const { jar } = await login(base)
      stack.idp.answer('token', outage(status, { 'retry-after': '30' }))
      stack.clock.advance(61_000)
      const before = stack.idp.stats.tokenRequests

      const down = await apiCall(jar, `${base}/api/orders`)
      t.equal(down.status, 503)
      t.equal(down.json().error, 'token_refresh_unavailable')
      t.equal(down.headers.get('retry-after'), '30', "the IdP's Retry-After, not the catalogue's 5")
      t.equal(stack.idp.stats.tokenRequests - before, 1)

      // 10 s in, 20 s in, 29.5 s in.
      for (const [step, left] of [
        [10_000, '20'],
        [10_000, '10'],
        [9_500, '1'],
      ] as const) {
        stack.clock.advance(step)
        const kept = await apiCall(jar, `${base}/api/orders`)
        t.equal(kept.status, 503)
        t.equal(kept.headers.get('retry-after'), left, `told the ${left} s left`)
      }
      t.equal(stack.idp.stats.tokenRequests - before, 1, 'not asked again within its 30 s')
      t.ok(
        stack.lines.some(
          (l) =>
            l.code === 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE' &&
            /^identity provider not asked/.test(String(l.cause)),
        ),
        'the answers the IdP was not asked for say so in the log',
      )
      t.ok(
        stack.lines.some((l) => /refresh failed/.test(l.msg) && l.retryAfter === 30),
        "the refresh's log line says what the IdP asked for",
      )

      stack.idp.answer('token')
      stack.clock.advance(500)
      t.equal(
        (await apiCall(jar, `${base}/api/orders`)).status,
        200,
        'after 30 s: asked again, and refreshed',
      )
      t.equal(stack.idp.stats.tokenRequests - before, 2)
      t.equal(stack.idp.stats.refreshReplays, 0)
    },
  )
}

t.test("an HTTP-date is read against the IdP's own Date header", async (t) => {
  const stack = await startObservedStack(t, { accessTokenTtl: 60 })
  stack.clock.freeze()
  const base = stack.gateway.url
  const { jar } = await login(base)
  // 40 s apart on the IdP's clock, thirty years behind this host's.
  stack.idp.answer(
    'token',
    outage(503, { date: 'Sun, 06 Nov 1994 08:49:37 GMT', 'retry-after': 'Sun, 06 Nov 1994 08:50:17 GMT' }),
  )
  stack.clock.advance(61_000)
  const before = stack.idp.stats.tokenRequests
  const down = await apiCall(jar, `${base}/api/orders`)
  t.equal(down.status, 503)
  t.equal(down.headers.get('retry-after'), '40')
  stack.clock.advance(39_000)
  t.equal((await apiCall(jar, `${base}/api/orders`)).headers.get('retry-after'), '1')
  t.equal(stack.idp.stats.tokenRequests - before, 1, 'not asked within the 40 s')
  stack.clock.advance(1_000)
  await apiCall(jar, `${base}/api/orders`)
  t.equal(stack.idp.stats.tokenRequests - before, 2, 'asked once they are over')
})

t.test(
  'a value that is no Retry-After, or asks less than the catalogue, waits the catalogue value',
  async (t) => {
    const stack = await startObservedStack(t, { accessTokenTtl: 60 })
    stack.clock.freeze()
    const base = stack.gateway.url
    const { jar } = await login(base)
    stack.clock.advance(61_000)
    stack.idp.answer('token', outage(503, { 'retry-after': '20' }))
    t.equal((await apiCall(jar, `${base}/api/orders`)).headers.get('retry-after'), '20', 'a usable one first')
    stack.clock.advance(20_000)
    for (const value of ['soon', '-30', '1.5', '0', '2', 'Sun, 06 Nov 1994 08:49:37 GMT']) {
      const before = stack.idp.stats.tokenRequests
      stack.idp.answer('token', outage(503, { 'retry-after': value }))
      const down = await apiCall(jar, `${base}/api/orders`)
      t.equal(down.status, 503, JSON.stringify(value))
      t.equal(down.headers.get('retry-after'), String(CATALOGUE), `${JSON.stringify(value)}: the catalogue's`)
      t.equal(stack.idp.stats.tokenRequests - before, 1)
      // The clock is frozen: to the wait's last millisecond, then past it.
      stack.clock.advance(CATALOGUE * 1_000 - 1)
      await apiCall(jar, `${base}/api/orders`)
      t.equal(stack.idp.stats.tokenRequests - before, 1, 'waited out in full')
      stack.clock.advance(1)
    }
  },
)

t.test('a day is cut to MAX_RETRY_AFTER, and the limit still ends the session', async (t) => {
  const stack = await startObservedStack(t, { accessTokenTtl: 60 })
  stack.clock.freeze()
  t.equal(stack.config.tokens.unavailableLimit, MAX_RETRY_AFTER * 1_000, 'the default limit is the bound')
  const base = stack.gateway.url
  const { jar } = await login(base)
  stack.idp.answer('token', outage(503, { 'retry-after': '86400' }))
  stack.clock.advance(61_000)
  const before = stack.idp.stats.tokenRequests
  const down = await apiCall(jar, `${base}/api/orders`)
  t.equal(down.headers.get('retry-after'), String(MAX_RETRY_AFTER), 'not a day: 5 minutes')
  stack.clock.advance(MAX_RETRY_AFTER * 1_000 - 1_000)
  t.equal((await apiCall(jar, `${base}/api/orders`)).headers.get('retry-after'), '1')
  t.equal(stack.idp.stats.tokenRequests - before, 1)
  stack.clock.advance(1_000)
  const ended = await apiCall(jar, `${base}/api/orders`)
  t.equal(ended.status, 401, 'asked again at the limit, still down: the session ends')
  t.equal(ended.json().error, 'session_expired')
  t.equal(stack.idp.stats.tokenRequests - before, 2)
})

t.test(
  'no wait reaches past tokens.unavailableLimit: the attempt that decides is made at the limit',
  async (t) => {
    const stack = await startObservedStack(t, { accessTokenTtl: 60, config: { unavailableLimit: 60_000 } })
    stack.clock.freeze()
    const base = stack.gateway.url
    const { jar } = await login(base)
    stack.idp.answer('token', outage(503, { 'retry-after': '45' }))
    stack.clock.advance(61_000)
    const before = stack.idp.stats.tokenRequests
    t.equal((await apiCall(jar, `${base}/api/orders`)).headers.get('retry-after'), '45', 'within the limit')
    stack.clock.advance(45_000)
    const second = await apiCall(jar, `${base}/api/orders`)
    t.equal(second.status, 503)
    t.equal(second.headers.get('retry-after'), '15', 'the 15 s left of the 60 s limit, not 45')
    stack.clock.advance(15_000)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'then the session ends, at 60 s')
    t.equal(stack.idp.stats.tokenRequests - before, 3)
  },
)

t.test("a client-credentials fetch waits out the IdP's Retry-After", async (t) => {
  const stack = await startObservedStack(t, { accessTokenTtl: 60 })
  stack.clock.freeze()
  const base = stack.gateway.url
  const { jar } = await login(base)
  stack.idp.answer('token', outage(503, { 'retry-after': '30' }, 'client_credentials'))
  const before = stack.idp.stats.tokenRequests
  const down = await apiCall(jar, `${base}/api/reports`)
  t.equal(down.status, 503)
  t.equal(down.json().error, 'client_token_unavailable')
  t.equal(down.headers.get('retry-after'), '30')
  stack.clock.advance(20_000)
  const kept = await apiCall(jar, `${base}/api/reports`)
  t.equal(kept.headers.get('retry-after'), '10', 'what is left')
  t.equal(stack.idp.stats.tokenRequests - before, 1, 'not fetched again within 30 s')
  stack.idp.answer('token')
  stack.clock.advance(10_000)
  t.equal((await apiCall(jar, `${base}/api/reports`)).status, 200, 'fetched once they are over')
  t.equal(stack.idp.stats.tokenRequests - before, 2)
})

t.test("a token exchange waits out the IdP's Retry-After", async (t) => {
  const clock = new TestClock().freeze()
  const stack = await startAudienceStack({ exchange: {}, accessTokenTtl: 60, gateway: { now: clock.now } })
  t.teardown(() => stack.close())
  const [url] = stack.urls
  stack.idp.answer(
    'token',
    outage(503, { 'retry-after': '30' }, 'urn:ietf:params:oauth:grant-type:token-exchange'),
  )
  const before = stack.idp.stats.tokenRequests
  const down = await apiCall(stack.jar, `${url}/ledger/a`)
  t.equal(down.status, 503)
  t.equal(down.json().error, 'token_exchange_unavailable')
  t.equal(down.headers.get('retry-after'), '30')
  clock.advance(25_000)
  t.equal((await apiCall(stack.jar, `${url}/ledger/a`)).headers.get('retry-after'), '5')
  t.equal(stack.idp.stats.tokenRequests - before, 1, 'not asked again within 30 s')
  stack.idp.answer('token')
  clock.advance(5_000)
  t.equal((await apiCall(stack.jar, `${url}/ledger/a`)).status, 200, `a ${LEDGER} token once they are over`)
  t.equal(stack.idp.stats.tokenExchanges, 1)
})

t.test("a WebSocket upgrade is told the IdP's Retry-After, then what is left of it", async (t) => {
  const upstream = await wsUpstream(t)
  const stack = await startObservedStack(t, {
    accessTokenTtl: 60,
    routes: () => [route('/live', upstream.url, { websocket: true })],
  })
  stack.clock.freeze()
  const { jar } = await login(stack.gateway.url)
  stack.idp.answer('token', outage(503, { 'retry-after': '30' }))
  stack.clock.advance(61_000)
  const before = stack.idp.stats.tokenRequests
  const refused = (await openSocket(wsUrl(stack, '/live/a'), browserHeaders(stack, jar)).catch(
    (e) => e,
  )) as Refused
  t.equal(refused.status, 503)
  t.match(JSON.parse(refused.body), { error: 'token_refresh_unavailable' })
  t.equal(refused.headers['retry-after'], '30')
  stack.clock.advance(10_000)
  const again = (await openSocket(wsUrl(stack, '/live/b'), browserHeaders(stack, jar)).catch(
    (e) => e,
  )) as Refused
  t.equal(again.headers['retry-after'], '20')
  t.equal(stack.idp.stats.tokenRequests - before, 1, 'the IdP asked once')
  t.equal(upstream.upgrades.length, 0, 'the upstream heard of neither')
})
