/**
 * An IdP that does not rotate refresh tokens may still slide the one the
 * client keeps, and say so: Keycloak sends `refresh_expires_in` (its SSO
 * idle time) on every refresh, though its answer may carry no
 * `refresh_token` (RFC 6749 §6 lets it leave the old one in use). The
 * gateway kept the token's first expiry whenever the answer had no new
 * token, so the session read as unable to refresh past it while its token
 * was live, and a logout elsewhere then revoked the grant it still used
 * (weighGrant), the worst way round.
 *
 * The gateway's clock is moved, not the IdP's: the IdP reports the kept
 * token's life as it stands then, a full lifetime counted from the
 * refresh by the gateway's clock, as a sliding lifetime would.
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
      `${store}: a refresh through ${path} that keeps the refresh token takes the answer's refresh_expires_in`,
      async (t) => {
        const clock = new TestClock()
        const { base, refreshTokenOf, logoutKeepsTheGrant } = await refreshingStack(t, {
          idp: {
            refreshTokenTtl: REFRESH_TTL,
            refreshExpiresIn: true,
            quirks: { grantPerUser: true, noRefreshTokenOnRefresh: true },
          },
          config: store === 'redis' ? { store: redis.url, keyPrefix: `${redis.prefix}kept${++n}:` } : {},
          gateway: { now: clock.now },
        })
        const phone = await login(base)
        const kept = await refreshTokenOf(phone.jar)
        clock.advance(300_000)
        const laptop = await login(base)
        t.equal(laptop.callback.status, 302, 'alice has sessions in two browsers, of one grant')
        t.equal((await apiCall(phone.jar, `${base}${path}`)).status, 200, 'the phone refreshes')
        t.equal(await refreshTokenOf(phone.jar), kept, 'its refresh token is kept, not rotated')

        // The laptop logs out past the kept token's first expiry by the gateway's clock, not the one its refresh gave it.
        clock.advance((REFRESH_TTL - 300 + 1) * 1000)
        await logoutKeepsTheGrant(t, laptop.jar, kept)
      },
    )
