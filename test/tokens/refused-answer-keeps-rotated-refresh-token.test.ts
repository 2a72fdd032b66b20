import t from 'tap'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

/**
 * An IdP that answers a refresh with a 200 has rotated the refresh token
 * (RFC 9700 §4.14.2), whatever the gateway then makes of the answer. One
 * the gateway refused (here a negative expires_in; as well an ID token that
 * fails validation, or a token type it did not ask for) was thrown away
 * whole, so the next request redeemed the spent refresh token again: a
 * replay, the grant revoked, the user logged out by the gateway itself.
 */
t.test("a refused 200's rotated refresh token is kept: the next redemption is no replay", async (t) => {
  const clock = new TestClock()
  const stack = await startStack(t, {
    gateway: { now: clock.now },
    idp: { quirks: { negativeExpiresInOnRefresh: true } },
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  stack.idp.resetStats()
  for (const attempt of [1, 2, 3]) {
    clock.advance(61_000)
    const answer = await apiCall(jar, `${base}/api/orders`)
    t.equal(answer.status, 503, `attempt ${attempt}: the answer is refused, the IdP said to come back`)
  }
  t.equal(stack.idp.stats.refreshGrants, 3, 'each attempt redeemed the token the last one was given')
  t.equal(stack.idp.stats.refreshReplays, 0, 'no spent refresh token was redeemed again')
  t.equal(stack.idp.stats.revokedGrants, 0, 'so the grant stands')
  t.equal((await apiCall(jar, `${base}/auth/user`)).status, 200, 'and the session with it')
})
