/**
 * `refresh_expires_in` is the IdP's to fill (Keycloak's, token-lifetime.ts
 * `refreshLifetime`), and only a finite positive number was asked of it. An
 * IdP that reported `1e308` seconds, a number JSON carries, made the refresh
 * token's expiry `now + 1e311` ms: Infinity, which a session record sealed
 * as JSON keeps as `null`, read back as "expired at 0". With the Redis
 * store every such session ended at its next request as if its refresh token
 * had expired, the IdP having said it never would. A lifetime is now taken
 * at most MAX_LIFETIME (a year), as `expires_in` is.
 */
import t from 'tap'
import { sessionRefOf } from '../helpers/app.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { startRedis } from '../helpers/redis.js'

const redis = await startRedis()
t.teardown(() => redis.stop())
let n = 0

for (const store of ['memory', 'redis'] as const)
  t.test(`${store}: an IdP that says its refresh token lives 1e308 seconds keeps the session`, async (t) => {
    const stack = await startObservedStack(t, {
      accessTokenTtl: 60,
      idp: { refreshExpiresIn: 1e308 },
      config:
        store === 'redis' ? { store: redis.url, keyPrefix: `${redis.prefix}huge${++n}:`, localCache: 0 } : {},
    })
    const base = stack.gateway.url
    const { jar } = await login(base)
    const record = async () =>
      stack.gateway.app.gatehouse.stores.sessions.get(
        sessionRefOf(stack.gateway.app, jar.get(base, 'gatehouse')!),
        stack.clock.now(),
      )
    const expiry = (await record())?.tokens.refreshTokenExpiresAt
    t.ok(
      expiry !== undefined && Number.isFinite(expiry) && expiry > stack.clock.now() + 364 * 24 * 3600_000,
      'the expiry kept is a date, a year or more ahead',
    )
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'signed in')
    t.equal((await apiCall(jar, `${base}/auth/user`)).status, 200, '/auth/user too')

    stack.clock.advance(61_000)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'refreshed')
    t.equal(stack.idp.stats.refreshGrants, 1)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'and still signed in')
    t.ok(Number.isFinite((await record())?.tokens.refreshTokenExpiresAt), 'the rotated token has a date too')
    t.same(
      stack.lines.filter((l) => l.code === 'GATEHOUSE_ERR_SESSION_EXPIRED'),
      [],
      'no line says the session ended',
    )
  })
