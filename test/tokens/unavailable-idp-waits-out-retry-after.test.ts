/**
 * A session whose refresh found the IdP unavailable (or refusing the
 * gateway's DPoP proof) is told to come back after Retry-After, and the
 * gateway waits that long too: before, every later API call of the session
 * asked the IdP again with the same token (ten calls in 2.3 s, ten
 * attempts), which an IdP that logs each as a security event answers by
 * banning the gateway's address, and which a recovering IdP meets from
 * every session at once. A client-credentials fetch is held to the same
 * wait. Against the real dev IdP, on a hand-moved clock, counting the token
 * requests it saw. The clock is frozen: the seconds left that each call is
 * told are the steps', however long a loaded machine takes between them.
 */

import t from 'tap'
import { type ErrorCode, retryAfterOf } from '../../src/errors.js'
import { startAudienceStack } from '../helpers/audience-stack.js'
import { signedInWithDpop } from '../helpers/dpop.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

/** What the catalogue tells the client, in ms: the gateway waits as long. */
const RETRY_AFTER = retryAfterOf('GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE')! * 1_000
const CALLS = 10
/** Between two calls: ten of them fit in Retry-After with room to spare. */
const STEP = RETRY_AFTER / 20

/**
 * What call `i` (0: the one that asked the IdP) is told: what is left of
 * the catalogue's Retry-After for `code` after `i` steps, in whole seconds.
 */
function leftOf(code: ErrorCode, i: number): string {
  return String(Math.ceil((retryAfterOf(code)! * 1_000 - i * STEP) / 1_000))
}

for (const fault of ['503', 'reset', 'hang'] as const) {
  t.test(
    `IdP ${fault}: calls within Retry-After make one refresh attempt, the next after it another, and recovery works`,
    async (t) => {
      const stack = await startObservedStack(t, {
        accessTokenTtl: 60,
        // A hanging IdP's answer is not awaited past the timeout here, so
        // that the next attempt is the back-off's to allow; awaited, it is
        // test/tokens/late-refresh-answer-kept.test.ts's.
        config: { idpTimeout: fault === 'hang' ? 400 : 3_000, oidc: { lateAnswerWait: 0 } },
      })
      stack.clock.freeze()
      const base = stack.gateway.url
      const { jar } = await login(base)
      stack.idp.setFault(fault)
      stack.clock.advance(61_000)
      const before = stack.idp.stats.tokenRequests
      for (let i = 0; i < CALLS; i++) {
        const down = await apiCall(jar, `${base}/api/orders`)
        t.equal(down.status, 503, `call ${i + 1}: 503`)
        t.equal(down.json().error, 'token_refresh_unavailable')
        t.equal(
          down.headers.get('retry-after'),
          leftOf('GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE', i),
          'what is left of the Retry-After the gateway keeps',
        )
        stack.clock.advance(STEP)
      }
      t.equal(stack.idp.stats.tokenRequests - before, 1, `${CALLS} calls within Retry-After: one attempt`)
      t.ok(
        stack.lines.some(
          (l) =>
            l.code === 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE' &&
            /^identity provider not asked/.test(String(l.cause)),
        ),
        'the answers the IdP was not asked for say so in the log',
      )

      stack.clock.advance(RETRY_AFTER)
      t.equal((await apiCall(jar, `${base}/api/orders`)).status, 503, 'past Retry-After: asked again')
      t.equal(stack.idp.stats.tokenRequests - before, 2)

      stack.idp.setFault('ok')
      t.equal((await apiCall(jar, `${base}/api/orders`)).status, 503, 'back, but this Retry-After runs')
      t.equal(stack.idp.stats.tokenRequests - before, 2)
      stack.clock.advance(RETRY_AFTER)
      t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the session refreshes once it is over')
      for (let i = 0; i < 3; i++) t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200)
      t.equal(stack.idp.stats.tokenRequests - before, 3, 'and uses its new token')
      t.equal(stack.idp.stats.refreshReplays, 0)
      t.match(await stack.metrics('gatehouse_token_refreshes_total{'), [
        'gatehouse_token_refreshes_total{outcome="unavailable",resource="",idp="default"} 2',
        'gatehouse_token_refreshes_total{outcome="success",resource="",idp="default"} 1',
      ])

      // The success is forgotten with the back-off: the next failure waits its own.
      stack.idp.setFault('503')
      stack.clock.advance(61_000)
      t.equal((await apiCall(jar, `${base}/api/orders`)).status, 503)
      t.equal((await apiCall(jar, `${base}/api/orders`)).status, 503)
      t.equal(stack.idp.stats.tokenRequests - before, 4, 'a new outage: one attempt again')
    },
  )
}

t.test('a still-valid token is used within Retry-After without asking the IdP again', async (t) => {
  const stack = await startObservedStack(t, { accessTokenTtl: 60 })
  stack.clock.freeze()
  const base = stack.gateway.url
  const { jar } = await login(base)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200)
  const held = stack.upstream.requests.at(-1)!.authorization
  stack.idp.setFault('503')
  // Due (refreshBefore is 5 s) but not expired.
  stack.clock.advance(56_000)
  const before = stack.idp.stats.tokenRequests
  for (let i = 0; i < CALLS; i++) {
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, `call ${i + 1}: the held token`)
    t.equal(stack.upstream.requests.at(-1)!.authorization, held)
    stack.clock.advance(STEP / 2)
  }
  t.equal(stack.idp.stats.tokenRequests - before, 1, 'one attempt')
  // Past both the token's expiry (60 s) and the Retry-After of the failure at 56 s.
  stack.clock.advance(RETRY_AFTER - (CALLS * STEP) / 2 + 2_000)
  const dead = await apiCall(jar, `${base}/api/orders`)
  t.equal(dead.status, 503, 'expired: 503')
  t.equal(stack.idp.stats.tokenRequests - before, 2, 'after a new attempt')
})

t.test('the unavailable limit still ends the session, counted from its first failure', async (t) => {
  const limit = 4 * RETRY_AFTER
  const stack = await startObservedStack(t, { accessTokenTtl: 60, config: { unavailableLimit: limit } })
  stack.clock.freeze()
  const base = stack.gateway.url
  const { jar } = await login(base)
  stack.idp.setFault('503')
  stack.clock.advance(61_000)
  const before = stack.idp.stats.tokenRequests
  // An attempt at the outage's start, one a Retry-After later, and so on:
  // the last of them less than the limit after the first.
  for (let attempt = 1; attempt <= 4; attempt++) {
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 503, `attempt ${attempt}`)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 503, 'and a call within its Retry-After')
    t.equal(stack.idp.stats.tokenRequests - before, attempt)
    stack.clock.advance(RETRY_AFTER + 100)
  }
  t.equal((await apiCall(jar, `${base}/auth/user`)).status, 200, 'the session stays')
  const ended = await apiCall(jar, `${base}/api/orders`)
  t.equal(ended.status, 401, 'the first attempt past the limit ends it')
  t.equal(ended.json().error, 'session_expired')
  t.equal((await apiCall(jar, `${base}/auth/user`)).status, 401)
  t.equal(stack.idp.stats.tokenRequests - before, 5)
})

t.test('a refused DPoP proof is waited out as an outage is', async (t) => {
  const { stack, base, jar } = await signedInWithDpop(t)
  stack.clock.freeze()
  stack.idp.answer('token', {
    grantType: 'refresh_token',
    status: 401,
    headers: { 'www-authenticate': 'DPoP error="invalid_dpop_proof", algs="ES256"' },
    body: { error: 'invalid_dpop_proof', error_description: 'DPoP proof iat is not recent enough' },
  })
  stack.clock.advance(61_000)
  const before = stack.idp.stats.tokenRequests
  for (let i = 0; i < CALLS; i++) {
    const refused = await apiCall(jar, `${base}/api/orders`)
    t.equal(refused.status, 503)
    t.equal(refused.json().error, 'dpop_proof_refused')
    t.equal(refused.headers.get('retry-after'), leftOf('GATEHOUSE_ERR_DPOP_PROOF_REFUSED', i))
    stack.clock.advance(STEP)
  }
  t.equal(stack.idp.stats.tokenRequests - before, 1, 'one attempt')
  stack.idp.answer('token')
  stack.clock.advance(RETRY_AFTER)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'accepted once it is over')
})

t.test(
  'the back-off is per session: every route of the session waits, other sessions and new logins do not',
  async (t) => {
    const clock = new TestClock().freeze()
    const stack = await startAudienceStack({ exchange: {}, accessTokenTtl: 60, gateway: { now: clock.now } })
    t.teardown(() => stack.close())
    const [url] = stack.urls
    // Another user's: a session of the same user would keep the grant at logout below.
    const other = await login(url!, { user: 'bob' })
    t.equal((await apiCall(other.jar, `${url}/orders/a`)).status, 200, "the other session's route token")
    stack.idp.setFault('503')
    clock.advance(61_000)
    const before = stack.idp.stats.tokenRequests
    // A route token is minted from the session's one refresh token: its
    // failure holds back the login token's refresh, the exchange and the
    // other routes', which would present that same token or go to the same IdP.
    t.equal((await apiCall(stack.jar, `${url}/orders/a`)).status, 503, 'a route token')
    t.equal(stack.idp.stats.tokenRequests - before, 1)
    for (const path of ['/api/a', '/reports/a', '/ledger/a', '/orders/b']) {
      t.equal((await apiCall(stack.jar, `${url}${path}`)).status, 503, path)
    }
    t.equal(stack.idp.stats.tokenRequests - before, 1, 'one attempt for the whole session')

    t.equal((await apiCall(other.jar, `${url}/orders/b`)).status, 503, 'another session tries for itself')
    t.equal(stack.idp.stats.tokenRequests - before, 2)

    stack.idp.setFault('ok')
    t.equal((await apiCall(stack.jar, `${url}/api/b`)).status, 503, 'the IdP is back, the Retry-After runs')
    t.equal(stack.idp.stats.tokenRequests - before, 2)
    const { logoutUrl } = (await apiCall(stack.jar, `${url}/auth/user`)).json<{ logoutUrl: string }>()
    t.equal((await jarFetch(stack.jar, `${url}${logoutUrl}`)).status, 200, 'logout goes ahead')
    t.equal(stack.idp.stats.revocations, 1, 'and revokes at the IdP')
    await login(url!, { jar: stack.jar })
    t.equal(
      (await apiCall(stack.jar, `${url}/ledger/b`)).status,
      200,
      'a new login in the same browser works at once',
    )
    t.equal((await apiCall(stack.jar, `${url}/orders/c`)).status, 200)
  },
)

t.test('a token exchange the IdP cannot serve is waited out too', async (t) => {
  const clock = new TestClock().freeze()
  const stack = await startAudienceStack({ exchange: {}, accessTokenTtl: 60, gateway: { now: clock.now } })
  t.teardown(() => stack.close())
  const [url] = stack.urls
  stack.idp.setFault('503')
  const before = stack.idp.stats.tokenRequests
  for (let i = 0; i < CALLS; i++) {
    const down = await apiCall(stack.jar, `${url}/ledger/a`)
    t.equal(down.status, 503)
    t.equal(down.json().error, 'token_exchange_unavailable')
    t.equal(down.headers.get('retry-after'), leftOf('GATEHOUSE_ERR_TOKEN_EXCHANGE_UNAVAILABLE', i))
    clock.advance(STEP)
  }
  t.equal(stack.idp.stats.tokenRequests - before, 1, `${CALLS} calls: one exchange attempted`)
  t.equal((await apiCall(stack.jar, `${url}/api/a`)).status, 200, 'the login token, still valid, goes on')
  stack.idp.setFault('ok')
  clock.advance(RETRY_AFTER)
  t.equal((await apiCall(stack.jar, `${url}/ledger/a`)).status, 200, 'exchanged once it is over')
  t.equal(stack.idp.stats.tokenExchanges, 1)
})

t.test('a client-credentials fetch the IdP cannot serve is waited out too', async (t) => {
  const stack = await startObservedStack(t, { accessTokenTtl: 60 })
  stack.clock.freeze()
  const base = stack.gateway.url
  const { jar } = await login(base)
  stack.idp.setFault('503')
  const before = stack.idp.stats.tokenRequests
  for (let i = 0; i < CALLS; i++) {
    const down = await apiCall(jar, `${base}/api/reports`)
    t.equal(down.status, 503)
    t.equal(down.json().error, 'client_token_unavailable')
    t.equal(down.headers.get('retry-after'), leftOf('GATEHOUSE_ERR_CLIENT_TOKEN_UNAVAILABLE', i))
    stack.clock.advance(STEP)
  }
  t.equal(stack.idp.stats.tokenRequests - before, 1, `${CALLS} calls: one fetch attempted`)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'user routes, whose token is fresh, go on')
  stack.clock.advance(RETRY_AFTER)
  t.equal((await apiCall(jar, `${base}/api/reports`)).status, 503, 'past Retry-After: asked again')
  t.equal(stack.idp.stats.tokenRequests - before, 2)
  stack.idp.setFault('ok')
  t.equal((await apiCall(jar, `${base}/api/reports`)).status, 503, 'back, but this Retry-After runs')
  stack.clock.advance(RETRY_AFTER)
  t.equal((await apiCall(jar, `${base}/api/reports`)).status, 200, 'fetched once it is over')
  t.equal((await apiCall(jar, `${base}/api/reports`)).status, 200)
  t.equal(stack.idp.stats.clientCredentialsGrants, 1)
  t.equal(stack.idp.stats.tokenRequests - before, 3)
})
