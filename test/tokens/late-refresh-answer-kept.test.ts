/**
 * An IdP slower than `oidc.timeout` still carries out the refresh it was
 * sent: it rotates the refresh token (RFC 9700 §4.14.2) and answers after
 * the gateway stopped waiting. The browser gets its 503 on time, but the
 * gateway keeps listening for that answer, holding the session's refresh
 * lock, and stores the rotated tokens when they come: the next redemption
 * uses the live refresh token instead of replaying the spent one, which
 * the IdP answers by revoking the grant and so ending the session.
 */
import t from 'tap'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { startRedis } from '../helpers/redis.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'
import { startReplicaSet } from '../helpers/replicas.js'
import { until } from '../helpers/websocket.js'

/**
 * The gateway's IdP budget, ms. It bounds every call to the IdP, the
 * login's code exchange too: at 300 ms, a login on a loaded machine timed
 * out, its callback answered 503, no session existed, and the refresh the
 * test waited for never came (401 where 503 was expected, then the file's
 * timeout). Long enough for a login anywhere; the refresh under test is
 * made slower than it on purpose.
 */
const IDP_TIMEOUT = 2_000
/** How late the IdP answers the refresh under test: past the budget, well within `oidc.lateAnswerWait`. */
const LATE = IDP_TIMEOUT + 600
/**
 * As late, for a test that acts (a reload, a logout) between the 503 and the
 * answer: 3 s to act in; the 500 ms these had is a window a loaded machine can miss.
 */
const LATER = IDP_TIMEOUT + 3_000

t.test('the answer to a timed-out refresh is kept, and the session with it', async (t) => {
  const stack = await startObservedStack(t, { accessTokenTtl: 60, config: { idpTimeout: IDP_TIMEOUT } })
  const base = stack.gateway.url
  const { jar } = await login(base)
  stack.clock.advance(61_000)
  // Slower than oidc.timeout, well within the time the gateway keeps listening.
  stack.idp.setTokenAnswerDelay(LATE)
  const carriedOut = new Promise<void>((resolve) => stack.idp.provider.once('grant.success', () => resolve()))
  const first = await apiCall(jar, `${base}/api/orders`)
  t.equal(first.status, 503, 'the browser is not kept waiting past oidc.timeout')
  t.match(first.headers.get('retry-after'), /^\d+$/)

  await carriedOut
  const kept = () => stack.lines.some((l) => /late answer/.test(l.msg))
  // Without the late answer kept, nothing is awaited: the line never comes.
  await until(kept)
  // Past the back-off the timeout asked for, the IdP quick again: the next
  // request redeems the refresh token if the session still holds the spent one.
  stack.clock.advance(6_000)
  stack.idp.setTokenAnswerDelay(0)
  const next = await apiCall(jar, `${base}/api/orders`)
  t.equal(next.status, 200, 'the session lives on the tokens of the late answer')
  t.equal(stack.idp.stats.refreshReplays, 0, 'no spent refresh token was presented again')
  t.equal(stack.idp.stats.revokedGrants, 0, 'and the grant stands')
  t.equal(stack.idp.stats.refreshGrants, 1, 'one redemption: the late one')
  t.ok(kept(), 'the log says the late answer was kept')
  const outcomes = await stack.metrics('gatehouse_token_refreshes_total{')
  t.ok(
    outcomes.some((l) => l.includes('outcome="late_success"') && !l.endsWith(' 0')),
    'and the metrics count it',
  )
})

t.test('across replicas: another instance waits for the late answer rather than replay', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const clock = new TestClock()
  const set = await startReplicaSet({
    store: redis.url,
    keyPrefix: redis.prefix,
    accessTokenTtl: 60,
    now: clock.now,
    count: 2,
    oidc: { timeout: IDP_TIMEOUT },
  })
  t.teardown(() => set.close())
  const [first, second] = set.urls as [string, string]
  clock.advance(61_000)
  set.idp.setTokenAnswerDelay(LATE)
  const carriedOut = new Promise<void>((resolve) => set.idp.provider.once('grant.success', () => resolve()))
  t.equal((await apiCall(set.jar, `${first}/api/orders`)).status, 503, 'the first replica times out')
  await carriedOut
  set.idp.setTokenAnswerDelay(0)
  // The first replica still holds the session's refresh lock, awaiting the
  // answer: the second waits for it, as for any refresh in flight.
  const other = await apiCall(set.jar, `${second}/api/orders`)
  t.equal(other.status, 200, 'the other replica serves the tokens of the late answer')
  t.equal(set.idp.stats.refreshReplays, 0, 'no spent refresh token was presented again')
  t.equal(set.idp.stats.refreshGrants, 1)
})

t.test('an IdP that never answers: the session is not refreshed again until the wait is over', async (t) => {
  const stack = await startObservedStack(t, {
    accessTokenTtl: 60,
    // The second request must come while the answer is still awaited: 3 s
    // leaves a loaded machine time for it; 500 ms was a window it can miss.
    config: { idpTimeout: IDP_TIMEOUT, oidc: { lateAnswerWait: 3_000 } },
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  stack.clock.advance(61_000)
  stack.idp.setFault('hang')
  const before = stack.idp.stats.tokenRequests
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 503, 'timed out')
  stack.idp.setFault('ok')
  // Past the back-off, the answer still awaited: the IdP is being asked already.
  stack.clock.advance(6_000)
  const meanwhile = await apiCall(jar, `${base}/api/orders`)
  t.equal(meanwhile.status, 503, 'answered at once')
  t.match(meanwhile.json().message, /still awaited/)
  t.equal(stack.idp.stats.tokenRequests - before, 1, 'and the IdP is not asked twice for one refresh token')

  const lost = () => stack.lines.some((l) => /no usable answer to a refresh that timed out/.test(l.msg))
  t.ok(await until(lost), 'once the wait is over, the log says what may follow')
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'and the session refreshes again')
  t.equal(stack.idp.stats.tokenRequests - before, 2)
  t.match(await stack.metrics('gatehouse_token_refreshes_total{outcome="late_lost"'), [/ 1$/])
})

t.test("a reload during the wait: the retired client's late answer is still stored", async (t) => {
  const clock = new TestClock()
  const logs = new LogLines()
  const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], {
    now: clock.now,
    logStream: logs.stream,
    input: { idpTimeout: IDP_TIMEOUT, logLevel: 'info' },
  })
  const { jar } = await login(stack.url)
  clock.advance(61_000)
  stack.idp.setTokenAnswerDelay(LATER)
  const carriedOut = new Promise<void>((resolve) => stack.idp.provider.once('grant.success', () => resolve()))
  t.equal((await apiCall(jar, `${stack.url}/api/x`)).status, 503, 'timed out')
  await carriedOut
  // Any provider setting makes new provider clients; the running ones are
  // closed once their app's requests are done, with the answer still out.
  stack.configMap.write(configText({ ...stack.input, oidc: { connectTimeout: 2_000 } }))
  t.match(await stack.running.reload(), { result: 'applied' })
  stack.idp.setTokenAnswerDelay(0)
  await logs.seen('the late answer kept', (l) =>
    /late answer to a refresh that timed out was kept/.test(l.msg),
  )
  clock.advance(6_000)
  t.equal((await apiCall(jar, `${stack.url}/api/x`)).status, 200, 'served on it by the new config')
  t.equal(stack.idp.stats.refreshReplays, 0, 'no spent refresh token was presented again')
  t.equal(stack.idp.stats.revokedGrants, 0)
})

t.test('a reload of the token settings during the wait: still answered at once', async (t) => {
  const clock = new TestClock()
  const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], {
    now: clock.now,
    input: { idpTimeout: IDP_TIMEOUT, oidc: { lateAnswerWait: 5_000 } },
  })
  const { jar } = await login(stack.url)
  clock.advance(61_000)
  stack.idp.setFault('hang')
  t.equal((await apiCall(jar, `${stack.url}/api/x`)).status, 503, 'timed out')
  // New token parts, the same provider clients: the refresh is still out.
  stack.configMap.write(configText({ ...stack.input, refreshWait: 4_000 }))
  t.match(await stack.running.reload(), { result: 'applied' })
  clock.advance(6_000)
  const started = Date.now()
  const meanwhile = await apiCall(jar, `${stack.url}/api/x`)
  t.equal(meanwhile.status, 503)
  t.match(meanwhile.json().message, /still awaited/, 'the new parts know the answer is awaited')
  t.ok(Date.now() - started < 4_000, 'not after waiting refreshWait on the lock')
})

t.test('a session that ends during the wait: the answer is counted lost, nothing stored', async (t) => {
  const stack = await startObservedStack(t, { accessTokenTtl: 60, config: { idpTimeout: IDP_TIMEOUT } })
  const base = stack.gateway.url
  const { jar } = await login(base)
  const { logoutUrl } = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()
  stack.clock.advance(61_000)
  stack.idp.setTokenAnswerDelay(LATER)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 503)
  await jarFetch(jar, `${base}${logoutUrl}`)
  stack.idp.setTokenAnswerDelay(0)
  const lost = () => stack.lines.some((l) => /no usable answer to a refresh that timed out/.test(l.msg))
  t.ok(await until(lost), 'counted as no usable answer')
  t.notOk(
    stack.lines.some((l) => /late answer to a refresh that timed out was kept/.test(l.msg)),
    'not as kept',
  )
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'the session stays ended')
})
