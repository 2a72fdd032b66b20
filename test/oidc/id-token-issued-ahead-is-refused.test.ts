/**
 * oauth4webapi checks that an ID token has an `iat`, not what it says: an
 * ID token issued minutes after this host's now (the IdP's clock ahead, or
 * this host's behind, or a token minted for later) was taken at sign-in and
 * at refresh. OIDC Core §3.1.3.7 item 10 lets a client refuse tokens
 * issued too far from its now; the bound is five minutes, wider than the
 * 30 s oauth4webapi allows `exp` and `nbf`, so an IdP whose clock runs a
 * minute fast still signs users in. The IdP here keeps real time, and the
 * gateway's clock is set behind it.
 */
import t from 'tap'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { LogLines } from '../helpers/reloadable.js'
import { defaultRoutes, startStack } from '../helpers/stack.js'

/** A stack on `clock`, whose `/api/scoped` redeems the session's refresh token, with ID token, at each first request. */
async function skewedStack(t: Parameters<typeof startStack>[0], clock: TestClock) {
  const log = new LogLines()
  const stack = await startStack(t, {
    routes: (upstream) => [
      ...defaultRoutes(upstream),
      route('/api/scoped', upstream, { scopes: ['openid', 'offline_access'] }),
    ],
    config: { logLevel: 'info' },
    gateway: { now: clock.now, logStream: log.stream },
  })
  return { stack, base: stack.gateway.url, log }
}

t.test('a sign-in whose ID token was issued past the clock tolerance ahead is refused', async (t) => {
  const clock = new TestClock()
  const { stack, base, log } = await skewedStack(t, clock)
  clock.advance(-600_000)
  const refused = await login(base)
  t.equal(refused.callback.status, 400, 'the callback refuses it')
  // 600 s and the time the sign-in took, less up to a second: `iat` is in
  // whole seconds, the IdP's now rounded down (a CI run once saw 599).
  t.match(refused.callback.text, /issued \(iat\) (599|6[01]\d) s ahead of this host/, 'and says why')
  t.match(
    log.lines.find((line) => line.code === 'GATEHOUSE_ID_TOKEN_ISSUED_AHEAD'),
    { level: 40, operation: 'code_exchange', idTokenIssuedAhead: Number, clockTolerance: 300 },
    'a warning names the clocks',
  )
  t.equal(stack.idp.stats.revokedGrants, 1, 'the refresh token no session holds is given back')
  t.equal((await apiCall(refused.jar, `${base}/auth/user`)).status, 401, 'no session was made')

  clock.advance(480_000)
  const within = await login(base)
  t.equal(within.callback.status, 302, 'within the tolerance (two minutes ahead) it is taken')
})

t.test('a refresh whose ID token was issued past the clock tolerance ahead is refused', async (t) => {
  const clock = new TestClock()
  const { base, log } = await skewedStack(t, clock)
  const { jar } = await login(base)
  clock.advance(-600_000)
  const refused = await apiCall(jar, `${base}/api/scoped`)
  t.equal(refused.status, 503, 'the route’s refresh is an outage, not the end of the session')
  t.equal(refused.json().error, 'token_refresh_unavailable')
  t.match(
    log.lines.find((line) => line.code === 'GATEHOUSE_ID_TOKEN_ISSUED_AHEAD'),
    { level: 40, operation: 'route_refresh' },
    'a warning names the clocks',
  )
  t.equal((await apiCall(jar, `${base}/auth/user`)).status, 200, 'the session stays')

  // Past the retry cooldown, with the clocks agreeing again.
  clock.advance(660_000)
  const after = await apiCall(jar, `${base}/api/scoped`)
  t.equal(after.status, 200, 'the refresh token the refused answer rotated was kept', { body: after.text })
})
