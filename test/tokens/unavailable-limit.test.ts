/**
 * "Unavailable" is transient, but not for ever: a session whose refreshes
 * see nothing but an unavailable IdP for longer than tokens.unavailableLimit
 * (5 minutes by default) ends with 401, so the SPA sends the user to sign
 * in instead of showing 503 for hours. A fake clock, not sleeps.
 */
import t from 'tap'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

const MINUTE = 60_000

t.test('an IdP unavailable for longer than the default 5 minutes ends the session with 401', async (t) => {
  const stack = await startObservedStack(t, { accessTokenTtl: 60 })
  stack.clock.freeze()
  t.equal(stack.config.tokens.unavailableLimit, 5 * MINUTE, 'the default')
  const base = stack.gateway.url
  const { jar } = await login(base)
  stack.idp.setFault('503')
  stack.clock.advance(61_000)
  for (const minutes of [0, 2, 4.9]) {
    if (minutes > 0) stack.clock.advance((minutes === 2 ? 2 : 2.9) * MINUTE)
    const down = await apiCall(jar, `${base}/api/orders`)
    t.equal(down.status, 503, `${minutes} min into the outage: 503`)
    t.ok(Number(down.headers.get('retry-after')) > 0)
    t.equal((await apiCall(jar, `${base}/auth/user`)).status, 200, 'the session stays')
  }
  stack.clock.advance(0.2 * MINUTE)
  const ended = await apiCall(jar, `${base}/api/orders`)
  t.equal(ended.status, 401, 'past 5 minutes: 401')
  t.equal(ended.json().error, 'session_expired')
  t.equal((await apiCall(jar, `${base}/auth/user`)).status, 401, '/auth/user too, so the SPA redirects')
  t.match(
    stack.lines.find((l) => /unavailableLimit/.test(l.msg)),
    {
      level: 40,
      code: 'GATEHOUSE_ERR_SESSION_EXPIRED',
      msg: 'identity provider unavailable for longer than tokens.unavailableLimit: session ended',
      reason: 'HTTP 503',
    },
  )
  t.match(await stack.metrics('gatehouse_token_refreshes_total{'), [
    'gatehouse_token_refreshes_total{outcome="unavailable",resource="",idp="default"} 3',
    'gatehouse_token_refreshes_total{outcome="unavailable_limit",resource="",idp="default"} 1',
  ])
})

t.test('a refresh that works in between starts the count again', async (t) => {
  const stack = await startObservedStack(t, { accessTokenTtl: 60, config: { unavailableLimit: 2 * MINUTE } })
  stack.clock.freeze()
  const base = stack.gateway.url
  const { jar } = await login(base)
  stack.idp.setFault('503')
  stack.clock.advance(61_000)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 503, 'the outage begins')
  stack.clock.advance(1.5 * MINUTE)
  stack.idp.setFault('ok')
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the IdP is back: refreshed')
  stack.idp.setFault('503')
  stack.clock.advance(61_000)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 503, 'a second outage')
  stack.clock.advance(1.5 * MINUTE)
  t.equal(
    (await apiCall(jar, `${base}/api/orders`)).status,
    503,
    '3 minutes after the first failure, but 1.5 after the first of this outage: still 503',
  )
  stack.clock.advance(MINUTE)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'this outage outlasted the limit')
})
