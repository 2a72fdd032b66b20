/**
 * `session.maxPerUser` ends first a session whose refresh token has
 * expired (by the expiry the IdP said, `refresh_expires_in`), then the
 * oldest. An IdP that does not rotate refresh tokens may still slide the
 * one the client keeps and say so on every refresh (Keycloak's SSO idle),
 * in an answer that carries no `refresh_token` (RFC 6749 §6). Were the
 * kept token's expiry not moved by that answer, a session in use would
 * read as unable to refresh past its first expiry, and a sign-in past the
 * bound would end it, the browser in use, ahead of one truly over: the
 * bound must weigh the kept token's new expiry, as logout does
 * (test/tokens/kept-refresh-token-takes-the-answers-expiry.test.ts).
 *
 * The gateway's clock is moved, not the IdP's: the IdP reports the kept
 * token's life as it stands then, a full lifetime counted from the
 * refresh by the gateway's clock, as a sliding lifetime would.
 */
import t from 'tap'
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

for (const store of ['memory', 'redis'] as const)
  for (const path of ['/api/orders', '/api/scoped'] as const)
    t.test(
      `${store}: a sign-in past the bound keeps a session whose refresh through ${path} slid its kept refresh token`,
      async (t) => {
        const clock = new TestClock()
        const { stack, base, log, refreshTokenOf } = await refreshingStack(t, {
          idp: {
            refreshTokenTtl: REFRESH_TTL,
            refreshExpiresIn: true,
            quirks: { noRefreshTokenOnRefresh: true },
          },
          config: {
            maxPerUser: 2,
            idleTimeout: 3_600_000, // 1 h: the phone's record outlives its refresh token
            ...(store === 'redis' ? { store: redis.url, keyPrefix: `${redis.prefix}boundkept${++n}:` } : {}),
          },
          gateway: { now: clock.now },
        })
        const idOf = (jar: CookieJar) => sessionRefOf(stack.gateway.app, jar.get(base, 'gatehouse')!).id
        const laptop = await login(base)
        const kept = await refreshTokenOf(laptop.jar)
        clock.advance(1_000)
        const phone = await login(base)
        t.equal(phone.callback.status, 302, 'alice signed in on her laptop, then her phone')
        const phoneId = idOf(phone.jar)

        // The laptop is in use: it refreshes before its refresh token's first expiry, which the
        // IdP keeps and slides, and the phone is not.
        clock.advance((REFRESH_TTL - 10) * 1000)
        t.equal((await apiCall(laptop.jar, `${base}${path}`)).status, 200, 'the laptop refreshes')
        t.equal(await refreshTokenOf(laptop.jar), kept, 'its refresh token is kept, not rotated')
        // Past the first expiry of both, by the gateway's clock; the laptop's slid past it.
        clock.advance(20_000)

        const tablet = await login(base)
        t.equal(tablet.callback.status, 302, 'a third sign-in, past maxPerUser 2')
        const ended = log.lines.filter((l) => l.code === 'GATEHOUSE_SESSION_OVER_BOUND')
        t.same(
          ended.map((l) => l.session),
          [sessionLogId(phoneId)],
          'one session was ended for the bound: the phone’s, whose refresh token had expired',
        )
        t.match(ended[0], { refreshExpired: true }, 'and its line says why that one')
        t.equal(
          (await apiCall(laptop.jar, `${base}/auth/user`)).status,
          200,
          'the laptop, older but with its kept token slid, stays signed in',
        )
        t.equal((await apiCall(tablet.jar, `${base}/auth/user`)).status, 200, 'the tablet is signed in')
        t.equal((await apiCall(phone.jar, `${base}/auth/user`)).status, 401, 'the phone’s is over')
      },
    )
