/**
 * `session.maxPerUser` ended the user's oldest sessions by creation time
 * alone, counting one whose refresh token had expired (by the expiry the
 * IdP said, `refresh_expires_in`) as any other: such a session can never
 * refresh again and ends at its next request (`Sessions.current`), yet a
 * sign-in past the bound ended an older session still in use and kept it.
 * The user was signed out of a browser by the gateway's own choice. A
 * session that cannot refresh now goes first, then the oldest.
 *
 * The gateway's clock is moved, not the IdP's: the IdP still honours every
 * refresh token, so which session ends is the gateway's decision alone.
 */
import t, { type Test } from 'tap'
import { sessionLogId } from '../../src/session/log-id.js'
import { sessionRefOf } from '../helpers/app.js'
import type { CookieJar } from '../helpers/cookie-jar.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { refreshingStack } from '../helpers/refreshing-stack.js'

const REFRESH_TTL = 600 // s, the IdP's refresh-token lifetime, which it reports (refresh_expires_in)

const redis = await startRedis()
t.teardown(() => redis.stop())
let n = 0

async function boundOfTwo(t: Test, store: 'memory' | 'redis') {
  const clock = new TestClock()
  const { stack, base, log } = await refreshingStack(t, {
    idp: { refreshTokenTtl: REFRESH_TTL, refreshExpiresIn: true },
    config: {
      maxPerUser: 2,
      idleTimeout: 3_600_000, // 1 h: the phone's record outlives its refresh token
      ...(store === 'redis' ? { store: redis.url, keyPrefix: `${redis.prefix}bound${++n}:` } : {}),
    },
    gateway: { now: clock.now },
  })
  const idOf = (jar: CookieJar) => sessionRefOf(stack.gateway.app, jar.get(base, 'gatehouse')!).id
  return { base, log, clock, idOf }
}

for (const store of ['memory', 'redis'] as const) {
  t.test(
    `${store}: a sign-in past the bound ends a session that cannot refresh, not an older live one`,
    async (t) => {
      const { base, log, clock, idOf } = await boundOfTwo(t, store)
      const laptop = await login(base)
      clock.advance(1_000)
      const phone = await login(base)
      t.equal(phone.callback.status, 302, 'alice signed in on her laptop, then her phone')
      const phoneId = idOf(phone.jar)

      // The laptop is in use: its refresh token is redeemed before it expires, and its new one lives on.
      clock.advance((REFRESH_TTL - 10) * 1000)
      t.equal((await apiCall(laptop.jar, `${base}/api/scoped`)).status, 200, 'the laptop refreshes')
      // The phone is not: its refresh token is past the expiry the IdP said, its record not yet idle.
      clock.advance(20_000)

      const tablet = await login(base)
      t.equal(tablet.callback.status, 302, 'a third sign-in, past maxPerUser 2')
      t.equal(
        (await apiCall(laptop.jar, `${base}/auth/user`)).status,
        200,
        'the laptop, older but still able to refresh, stays signed in',
      )
      t.equal((await apiCall(tablet.jar, `${base}/auth/user`)).status, 200, 'the tablet is signed in')
      t.equal(
        (await apiCall(laptop.jar, `${base}/api/scoped`)).status,
        200,
        'and the laptop’s session still reaches the API',
      )
      const ended = log.lines.filter((l) => l.code === 'GATEHOUSE_SESSION_OVER_BOUND')
      t.same(
        ended.map((l) => l.session),
        [sessionLogId(phoneId)],
        'one session was ended for the bound: the phone’s',
      )
      t.match(
        ended[0],
        { refreshExpired: true, msg: /its refresh token had expired/ },
        'and its line says why that one',
      )
      t.equal((await apiCall(phone.jar, `${base}/auth/user`)).status, 401, 'the phone’s is over')
    },
  )
}
