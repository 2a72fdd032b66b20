/**
 * A refresh the IdP answered 200 and the gateway refused (here a negative
 * `expires_in`) still rotated the refresh token, and the session keeps the
 * new one (refused-answer-keeps-rotated-refresh-token.test.ts). It kept
 * the spent token's expiry with it, though the IdP gave the new token a
 * lifetime of its own: the session then read as past its refresh expiry
 * while its refresh token was live at the IdP, and a logout elsewhere
 * revoked the grant it used (weighGrant), the worst way round.
 *
 * The gateway's clock is moved, not the IdP's: the rotated token's
 * lifetime at the IdP starts when it was issued, so by the time the
 * gateway's clock passes the spent token's expiry the IdP still honours
 * the rotated one, as it would after a real wait of the same length.
 */
import t from 'tap'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { refreshingStack } from '../helpers/refreshing-stack.js'

const REFRESH_TTL = 600 // s, the IdP's refresh-token lifetime, which it reports (refresh_expires_in)

const redis = await startRedis()
t.teardown(() => redis.stop())

for (const store of ['memory', 'redis'] as const) {
  t.test(
    `${store}: a refused 200's rotated refresh token is not taken as expired at the spent one's expiry`,
    async (t) => {
      const clock = new TestClock()
      const { stack, base, refreshTokenOf, logoutKeepsTheGrant } = await refreshingStack(t, {
        idp: {
          refreshTokenTtl: REFRESH_TTL,
          refreshExpiresIn: true,
          quirks: { grantPerUser: true, negativeExpiresInOnRefresh: true },
        },
        config: store === 'redis' ? { store: redis.url, keyPrefix: `${redis.prefix}rotx:` } : {},
        gateway: { now: clock.now },
      })
      const phone = await login(base)
      const spent = await refreshTokenOf(phone.jar)
      clock.advance(300_000)
      const laptop = await login(base)
      t.equal(laptop.callback.status, 302, 'alice has sessions in two browsers, of one grant')

      // The phone's access token has expired: its refresh is a 200 the gateway refuses.
      clock.advance(61_000)
      t.equal((await apiCall(phone.jar, `${base}/api/orders`)).status, 503, 'the refresh answer is refused')
      const rotated = await refreshTokenOf(phone.jar)
      t.not(rotated, spent, 'the phone keeps the rotated refresh token')
      t.equal((await stack.idp.introspect(rotated)).active, true, 'which the IdP honours')

      // She logs out on the laptop past the spent token's expiry by the gateway's clock, not the
      // rotated one's: her grant is not revoked, as the phone can still refresh.
      clock.advance((REFRESH_TTL - 361 + 1) * 1000)
      await logoutKeepsTheGrant(t, laptop.jar, rotated)
    },
  )
}
