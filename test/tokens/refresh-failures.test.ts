import t, { type Test } from 'tap'
import type { LockService } from '../../src/tokens/types.js'
import { sessionRefOf } from '../helpers/app.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

async function loggedIn(t: Test, idpTimeout = 3_000) {
  const clock = new TestClock().freeze()
  const stack = await startStack(t, {
    accessTokenTtl: 60,
    // An IdP that hangs never answers: the late answer a refresh awaits
    // past its timeout (test/tokens/late-refresh-answer-kept.test.ts) would
    // hold the session's next refresh for that long. Here, as if given up.
    config: { idpTimeout, oidc: { lateAnswerWait: 0 } },
    gateway: { now: clock.now },
  })
  const { jar } = await login(stack.gateway.url)
  return { stack, clock, jar, url: `${stack.gateway.url}/api/orders` }
}

for (const fault of ['503', 'reset', 'hang'] as const) {
  t.test(
    `IdP ${fault === 'hang' ? 'hanging' : fault}: 503 with Retry-After once the token is dead, session kept, recovery`,
    async (t) => {
      const { stack, clock, jar, url } = await loggedIn(t, fault === 'hang' ? 400 : 3_000)
      const original = (await apiCall(jar, url)).status
      t.equal(original, 200)
      const firstToken = stack.upstream.requests.at(-1)!.authorization

      stack.idp.setFault(fault)
      // Inside refreshBefore but not yet expired: the current token still works.
      clock.advance(57_000)
      const stale = await apiCall(jar, url)
      t.equal(stale.status, 200, 'a still-valid token is forwarded while the IdP is down')
      t.equal(stack.upstream.requests.at(-1)!.authorization, firstToken)

      clock.advance(4_000)
      const dead = await apiCall(jar, url)
      t.equal(dead.status, 503)
      t.equal(dead.json().error, 'token_refresh_unavailable')
      t.ok(Number(dead.headers.get('retry-after')) > 0, 'Retry-After is set')
      t.notMatch(dead.headers.getSetCookie().join(), /gatehouse=;/, 'the session cookie is not cleared')

      stack.idp.setFault('ok')
      // The gateway waits out the Retry-After it gave, as the client does.
      clock.advance(Number(dead.headers.get('retry-after')) * 1_000)
      const recovered = await apiCall(jar, url)
      t.equal(recovered.status, 200, 'the same session recovers when the IdP does')
      t.not(stack.upstream.requests.at(-1)!.authorization, firstToken)
      t.equal(stack.idp.stats.refreshReplays, 0)
    },
  )
}

t.test('invalid_grant ends the session: 401 session_expired, cookie cleared', async (t) => {
  const { stack, clock, jar, url } = await loggedIn(t)
  const store = stack.gateway.app.gatehouse.stores.sessions
  const ref = sessionRefOf(stack.gateway.app, jar.get(stack.gateway.url, 'gatehouse')!)
  const session = await store.get(ref, clock.now())
  // The grant dies at the IdP (an admin revoked it, or it expired there).
  await stack.gateway.app.gatehouse.oidc.revoke(session!.tokens.refreshToken!)

  clock.advance(61_000)
  const expired = await apiCall(jar, url)
  t.equal(expired.status, 401)
  t.equal(expired.json().error, 'session_expired')
  t.match(expired.headers.getSetCookie().join('\n'), /gatehouse=;/, 'the cookie is cleared')
  t.equal(await store.get(ref, clock.now()), undefined, 'the session is deleted')
  t.equal((await apiCall(jar, url)).json().error, 'unauthenticated')
})

t.test('client routes: one client-credentials grant per lifetime under parallel load', async (t) => {
  const clock = new TestClock().freeze()
  const stack = await startStack(t, { accessTokenTtl: 60, gateway: { now: clock.now } })
  const { jar } = await login(stack.gateway.url)
  const url = `${stack.gateway.url}/api/reports`
  const first = await Promise.all(Array.from({ length: 100 }, () => apiCall(jar, url)))
  t.same(new Set(first.map((r) => r.status)), new Set([200]))
  t.equal(stack.idp.stats.clientCredentialsGrants, 1, 'one grant for 100 parallel calls')
  t.equal(new Set(stack.upstream.requests.map((r) => r.authorization)).size, 1)

  clock.advance(30_000)
  await Promise.all(Array.from({ length: 50 }, () => apiCall(jar, url)))
  t.equal(stack.idp.stats.clientCredentialsGrants, 1, 'reused while fresh')

  clock.advance(31_000)
  const second = await Promise.all(Array.from({ length: 100 }, () => apiCall(jar, url)))
  t.same(new Set(second.map((r) => r.status)), new Set([200]))
  t.equal(stack.idp.stats.clientCredentialsGrants, 2, 'one more grant for the next lifetime')
})

/**
 * Resolves with the key once a request starts waiting on `locks` for a lock
 * someone else holds: the real lock service, watched at its seam.
 */
function nextWait(locks: LockService): Promise<string> {
  const original = locks.waitForRelease.bind(locks)
  return new Promise((resolve) => {
    locks.waitForRelease = (key, timeoutMs) => {
      locks.waitForRelease = original
      const waiting = original(key, timeoutMs)
      resolve(key)
      return waiting
    }
  })
}

t.test(
  'a request that waited on a refresh that failed elsewhere answers 503 and never redeems the refresh token itself',
  async (t) => {
    const { stack, clock, jar, url } = await loggedIn(t)
    const { stores } = stack.gateway.app.gatehouse
    const ref = sessionRefOf(stack.gateway.app, jar.get(stack.gateway.url, 'gatehouse')!)
    const { id } = ref
    const before = await stores.sessions.get(ref, clock.now())
    clock.advance(61_000)
    // Another instance holds the session's refresh lock: its IdP call is in flight.
    const held = await stores.locks.tryAcquire(`refresh:${id}`, 10_000)
    t.ok(held, 'the test holds the lock another instance would')
    const waited = nextWait(stores.locks)
    const answering = apiCall(jar, url)
    t.equal(await waited, `refresh:${id}`)
    // ...and gives up without storing anything, as a refresh that timed out does.
    await held!.release()

    const answer = await answering
    t.equal(answer.status, 503)
    t.equal(answer.json().error, 'token_refresh_unavailable')
    t.ok(Number(answer.headers.get('retry-after')) > 0)
    t.equal(
      stack.idp.stats.refreshGrants,
      0,
      'the waiter did not redeem the refresh token the holder may have spent',
    )
    const after = await stores.sessions.get(ref, clock.now())
    t.equal(after?.tokens.refreshToken, before?.tokens.refreshToken, 'the session is kept as it was')

    const retried = await apiCall(jar, url)
    t.equal(retried.status, 200, 'the next request, with the lock free, refreshes')
    t.equal(stack.idp.stats.refreshGrants, 1)
    t.equal(stack.idp.stats.refreshReplays, 0)
  },
)

t.test(
  'a client route that waited on a client-credentials fetch that failed elsewhere answers 503 without fetching its own',
  async (t) => {
    const { stack, jar } = await loggedIn(t)
    const { stores } = stack.gateway.app.gatehouse
    // The cache key names the issuer and client id that mint the token (client-tokens.ts).
    const { issuer, clientId } = stack.gateway.app.gatehouse.oidc.registration
    const lock = `client:${issuer} ${JSON.stringify(clientId)} reports.read`
    const held = await stores.locks.tryAcquire(lock, 10_000)
    t.ok(held)
    const waited = nextWait(stores.locks)
    const answering = apiCall(jar, `${stack.gateway.url}/api/reports`)
    t.equal(await waited, lock)
    await held!.release()

    const answer = await answering
    t.equal(answer.status, 503)
    t.equal(answer.json().error, 'client_token_unavailable')
    t.equal(stack.idp.stats.clientCredentialsGrants, 0, 'no fetch of its own behind a holder that failed')
    t.equal((await apiCall(jar, `${stack.gateway.url}/api/reports`)).status, 200, 'the next request fetches')
    t.equal(stack.idp.stats.clientCredentialsGrants, 1)
  },
)
