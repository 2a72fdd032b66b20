/**
 * When the IdP refuses the gateway's own client credentials (its secret
 * expired, or the wrong one configured), every request of every session
 * that needed a refresh asked again, each a failed client authentication:
 * IdPs lock clients out for that, and fail2ban bans the address. Now a
 * refusal holds back that provider's token requests (after
 * unauthorized_client, that grant's only) for CLIENT_REFUSED_BACK_OFF,
 * per process: the requests meanwhile get the same 500 without the IdP
 * being asked, and say so in the log; the sessions stay, and a
 * still-valid token is still used. Against the real dev IdP
 * (oidc-provider refusing an expired secret, or a wrong one after a
 * reload), on a hand-moved clock, counting the token requests it saw.
 */
import t from 'tap'
import { LEDGER, startAudienceStack } from '../helpers/audience-stack.js'
import { CLIENT_ID, CLIENT_SECRET, route, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { type LogLine, startObservedStack } from '../helpers/observed-stack.js'
import { configText, startReloadable } from '../helpers/reloadable.js'

/** src/tokens/refused-client.ts's CLIENT_REFUSED_BACK_OFF, ms. */
const BACK_OFF = 300_000
const CALLS = 20

/** Log lines of a 500 answered without asking the IdP. */
const notAsked = (lines: readonly LogLine[]) =>
  lines.filter(
    (l) =>
      l.code === 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED' &&
      /^identity provider not asked: it refused the gateway's client credentials/.test(String(l.cause)),
  )

t.test(
  'a refused client makes one refresh call per provider per back-off, however many sessions ask; the sessions stay',
  async (t) => {
    const stack = await startObservedStack(t, { accessTokenTtl: 60 })
    stack.clock.freeze()
    const base = stack.gateway.url
    const alice = await login(base)
    const bob = await login(base)
    stack.clock.advance(30_000)
    // Logged in 30 s later: its token is still valid when the others' have expired.
    const carol = await login(base)
    await stack.idp.expireClientSecret(CLIENT_ID)
    stack.clock.advance(31_000)
    const before = stack.idp.stats.tokenRequests

    const first = await apiCall(alice.jar, `${base}/api/orders`)
    t.equal(first.status, 500)
    t.equal(first.json().error, 'idp_client_refused')
    t.equal(first.headers.get('retry-after'), null, 'a configuration error: no Retry-After')
    t.equal(stack.idp.stats.tokenRequests - before, 1, 'the IdP was asked once, and refused')

    const answers = await Promise.all(
      Array.from({ length: CALLS }, (_, i) => apiCall((i % 2 ? alice : bob).jar, `${base}/api/orders`)),
    )
    t.same(
      answers.map((a) => [a.status, a.json().error]),
      answers.map(() => [500, 'idp_client_refused']),
      `${CALLS} requests of two sessions: the same 500`,
    )
    t.equal(stack.idp.stats.tokenRequests - before, 1, 'and not one more call to the IdP')
    // One line a minute, not one each: the outage answers every request alike.
    t.equal(notAsked(stack.lines).length, 1, 'logged as not asked, once for all of them')
    const client = await apiCall(alice.jar, `${base}/api/reports`)
    t.equal(client.status, 500, "a client route's token, authenticated the same way, is held back too")
    t.equal(stack.idp.stats.tokenRequests - before, 1)
    t.equal(
      stack.lines.filter((l) => l.level === 50 && l.code === 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED').length,
      1,
      'one error line with the hint, for the one refusal',
    )

    for (const jar of [alice.jar, bob.jar, carol.jar])
      t.equal((await apiCall(jar, `${base}/auth/user`)).status, 200, 'the session stays')
    stack.clock.advance(25_000)
    t.equal(
      (await apiCall(carol.jar, `${base}/api/orders`)).status,
      200,
      "a token due for refresh but still valid is used: the IdP's refusal is the gateway's fault",
    )
    t.equal(stack.idp.stats.tokenRequests - before, 1)

    await stack.idp.expireClientSecret(CLIENT_ID, false)
    stack.clock.advance(BACK_OFF - 25_000 - 1_000)
    t.equal((await apiCall(bob.jar, `${base}/api/orders`)).status, 500, 'renewed, but the back-off runs')
    t.equal(stack.idp.stats.tokenRequests - before, 1)

    stack.clock.advance(1_000)
    t.equal(
      (await apiCall(bob.jar, `${base}/api/orders`)).status,
      200,
      'once it is over: asked, and accepted',
    )
    t.equal((await apiCall(alice.jar, `${base}/api/orders`)).status, 200)
    t.equal(stack.idp.stats.tokenRequests - before, 3, 'one refresh each')
    t.equal(stack.idp.stats.refreshReplays, 0)
  },
)

t.test('a client-credentials token is held back the same way, and user routes go on', async (t) => {
  const stack = await startObservedStack(t, { accessTokenTtl: 60 })
  stack.clock.freeze()
  const base = stack.gateway.url
  const { jar } = await login(base)
  await stack.idp.expireClientSecret(CLIENT_ID)
  const before = stack.idp.stats.tokenRequests
  const first = await apiCall(jar, `${base}/api/reports`)
  t.equal(first.status, 500)
  t.equal(first.json().error, 'idp_client_refused')
  const answers = await Promise.all(Array.from({ length: CALLS }, () => apiCall(jar, `${base}/api/reports`)))
  t.same(
    answers.map((a) => a.status),
    answers.map(() => 500),
  )
  t.equal(stack.idp.stats.tokenRequests - before, 1, `${CALLS + 1} requests: one call`)
  t.equal(notAsked(stack.lines).length, 1, 'logged as not asked, once for all of them')
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, "a user route's fresh token is used")

  await stack.idp.expireClientSecret(CLIENT_ID, false)
  stack.clock.advance(BACK_OFF)
  t.equal((await apiCall(jar, `${base}/api/reports`)).status, 200, 'fetched once the back-off is over')
  t.equal(stack.idp.stats.tokenRequests - before, 2)
  t.equal(stack.idp.stats.clientCredentialsGrants, 1)
})

t.test(
  'unauthorized_client holds back its own grant only: refreshes still go while client credentials are refused',
  async (t) => {
    const stack = await startObservedStack(t, { accessTokenTtl: 60 })
    stack.clock.freeze()
    const base = stack.gateway.url
    const { jar } = await login(base)
    // RFC 6749 §5.2: this client may not use this grant; the others it may.
    stack.idp.answer('token', {
      status: 400,
      body: { error: 'unauthorized_client', error_description: 'client_credentials is not allowed' },
      grantType: 'client_credentials',
    })
    t.equal((await apiCall(jar, `${base}/api/reports`)).status, 500)
    t.equal((await apiCall(jar, `${base}/api/reports`)).status, 500)
    const refreshes = stack.idp.stats.refreshGrants
    stack.clock.advance(61_000)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the session refreshes')
    t.equal(stack.idp.stats.refreshGrants - refreshes, 1)
    t.equal(notAsked(stack.lines).length, 1, 'only the client route was held back')
  },
)

t.test('a token exchange is held back the same way', async (t) => {
  const clock = new TestClock().freeze()
  const stack = await startAudienceStack({ exchange: {}, accessTokenTtl: 60, gateway: { now: clock.now } })
  t.teardown(() => stack.close())
  const [url] = stack.urls
  await stack.idp.expireClientSecret(CLIENT_ID)
  const before = stack.idp.stats.tokenRequests
  for (let i = 0; i < 5; i++) {
    const refused = await apiCall(stack.jar, `${url}/ledger/a`)
    t.equal(refused.status, 500)
    t.equal(refused.json().error, 'idp_client_refused')
  }
  t.equal(stack.idp.stats.tokenRequests - before, 1, 'five requests: one exchange attempted')
  t.equal((await apiCall(stack.jar, `${url}/api/a`)).status, 200, 'the login token, still valid, goes on')
  await stack.idp.expireClientSecret(CLIENT_ID, false)
  clock.advance(BACK_OFF)
  t.equal((await apiCall(stack.jar, `${url}/ledger/a`)).status, 200, `a ${LEDGER} token once it is over`)
  t.equal(stack.idp.stats.tokenExchanges, 1)
})

t.test('a reload with the right credentials asks at once, the back-off notwithstanding', async (t) => {
  const clock = new TestClock().freeze()
  const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], { now: clock.now })
  const { jar } = await login(stack.url)
  const wrong = 'a-client-secret-that-the-idp-never-issued'
  stack.configMap.write(configText({ ...stack.input, oidc: { clientSecret: wrong } }))
  t.match(await stack.running.reload(), { result: 'applied' })
  clock.advance(61_000)
  const before = stack.idp.stats.tokenRequests
  for (let i = 0; i < 5; i++) t.equal((await apiCall(jar, `${stack.url}/api/x`)).status, 500)
  t.equal(stack.idp.stats.tokenRequests - before, 1, 'the wrong secret: refused once, then held back')

  stack.configMap.write(configText({ ...stack.input, oidc: { clientSecret: CLIENT_SECRET } }))
  t.match(await stack.running.reload(), { result: 'applied' })
  t.equal((await apiCall(jar, `${stack.url}/api/x`)).status, 200, 'the fixed config is tried at once')
  t.equal(stack.idp.stats.tokenRequests - before, 2)
})
