/**
 * `rx`, the refresh token's expiry a logout elsewhere weighs a shared grant
 * by, must follow every write of the session's tokens: a refresh rotates
 * the refresh token and the IdP gives the new one a lifetime of its own. A
 * write path that left the first token's expiry would make a session that
 * refreshed read as unable to, and a logout in another browser revoke the
 * grant it still uses. Here the phone refreshes (the login's token, or a
 * route's own audience) and the laptop logs out past the first token's
 * expiry, before the rotated one's.
 */
import t from 'tap'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { refreshingStack } from '../helpers/refreshing-stack.js'

const REFRESH_TTL = 600 // s, the IdP's refresh-token lifetime, which it reports (refresh_expires_in)

const redis = await startRedis()
t.teardown(() => redis.stop())
let n = 0

for (const store of ['memory', 'redis'] as const)
  for (const path of ['/api/orders', '/api/scoped'] as const)
    t.test(
      `${store}: a session refreshed through ${path} keeps the shared grant past its first token's expiry`,
      async (t) => {
        const clock = new TestClock()
        const { base, refreshTokenOf, logoutKeepsTheGrant } = await refreshingStack(t, {
          idp: { refreshTokenTtl: REFRESH_TTL, refreshExpiresIn: true, quirks: { grantPerUser: true } },
          config: store === 'redis' ? { store: redis.url, keyPrefix: `${redis.prefix}rxf${++n}:` } : {},
          gateway: { now: clock.now },
        })
        const phone = await login(base)
        const first = await refreshTokenOf(phone.jar)
        clock.advance(300_000)
        const laptop = await login(base)
        t.equal(laptop.callback.status, 302, 'alice has sessions in two browsers, of one grant')
        t.equal((await apiCall(phone.jar, `${base}${path}`)).status, 200, 'the phone refreshes')
        const rotated = await refreshTokenOf(phone.jar)
        t.not(rotated, first, 'its refresh token rotated')

        clock.advance((REFRESH_TTL - 300 + 1) * 1000)
        // She logs out on the laptop past the first token’s expiry.
        await logoutKeepsTheGrant(t, laptop.jar, rotated)
      },
    )
