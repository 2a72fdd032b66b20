/**
 * Logout keeps the grant while another live session of the user may share
 * it (logout-keeps-a-shared-grant.test.ts). A session whose refresh token
 * has expired, by the expiry the IdP said (`refresh_expires_in`), counted
 * as live until its idle expiry all the same: the grant was kept for a
 * session that could never refresh again and ends at its next request
 * (`Sessions.current`). It now counts only while its refresh token is not
 * known to have expired, in the memory store and in Redis, where the
 * token is sealed and its expiry is read from a field in the clear.
 *
 * The gateway's clock is moved, not the IdP's: the IdP still honours the
 * other session's refresh token, so what the test reads at the IdP is the
 * gateway's decision alone.
 */
import t, { type Test } from 'tap'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, followLogoutLink, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { refreshingStack } from '../helpers/refreshing-stack.js'

const REFRESH_TTL = 600 // s, the IdP's refresh-token lifetime, which it reports (refresh_expires_in)

const redis = await startRedis()
t.teardown(() => redis.stop())
let n = 0

/**
 * Alice signed in on her phone, and, `laterBy` ms after by the gateway's
 * clock, on her laptop, at an IdP that keeps one grant per user: both
 * sessions hold it.
 */
async function twoSessionsOfOneGrant(t: Test, store: 'memory' | 'redis', laterBy: number) {
  const clock = new TestClock()
  const { stack, base, log, refreshTokenOf, withCookieOf } = await refreshingStack(t, {
    idp: { refreshTokenTtl: REFRESH_TTL, refreshExpiresIn: true, quirks: { grantPerUser: true } },
    config: store === 'redis' ? { store: redis.url, keyPrefix: `${redis.prefix}grant${++n}:` } : {},
    gateway: { now: clock.now },
  })
  const phone = await login(base)
  const phoneToken = await refreshTokenOf(phone.jar)
  clock.advance(laterBy)
  const laptop = await login(base)
  t.equal(laptop.callback.status, 302, 'alice has sessions in two browsers, of one grant')
  return { stack, base, log, clock, phone, phoneToken, laptop, withCookieOf }
}

for (const store of ['memory', 'redis'] as const) {
  t.test(`${store}: logout revokes a grant whose other session’s refresh token has expired`, async (t) => {
    const { stack, base, log, phone, phoneToken, laptop } = await twoSessionsOfOneGrant(
      t,
      store,
      (REFRESH_TTL + 1) * 1000,
    )
    t.equal((await followLogoutLink(laptop.jar, base)).status, 200, 'she logs out on the laptop')
    t.equal(stack.idp.stats.revokedGrants, 1, 'the grant is revoked: the phone’s session cannot refresh')
    t.equal(
      (await stack.idp.introspect(phoneToken)).active,
      false,
      'the phone’s refresh token no longer works at the IdP',
    )
    t.notOk(
      log.lines.find((l) => /^logout: its refresh token is not revoked/.test(l.msg)),
      'no line says it was kept',
    )
    const after = await apiCall(phone.jar, `${base}/api/scoped`)
    t.equal(after.status, 401, 'the phone’s session is over, as it was by its own expiry')
  })

  t.test(`${store}: logout keeps a grant whose other session can still refresh`, async (t) => {
    const { stack, base, log, clock, phone, laptop } = await twoSessionsOfOneGrant(
      t,
      store,
      (REFRESH_TTL - 60) * 1000,
    )
    t.equal((await followLogoutLink(laptop.jar, base)).status, 200, 'she logs out on the laptop')
    t.equal(stack.idp.stats.revokedGrants, 0, 'her grant is not revoked')
    t.ok(
      log.lines.find((l) =>
        /^logout: its refresh token is not revoked, since another session of its user may share its grant/.test(
          l.msg,
        ),
      ),
      'and the log says why',
    )
    clock.advance(30_000)
    const after = await apiCall(phone.jar, `${base}/api/scoped`)
    t.equal(after.status, 200, 'the phone’s session still refreshes', { body: after.text })
  })
}

/**
 * A sign-in over a live session weighs the grant the same way (the
 * session fixation row of docs/security.md): bob signs in over alice's
 * laptop session, and her phone's, whose refresh token has expired,
 * keeps her grant alive no more than it would at logout.
 */
t.test(
  'a sign-in as another user revokes a grant whose other session’s refresh token has expired',
  async (t) => {
    const { stack, base, log, phoneToken, laptop, withCookieOf } = await twoSessionsOfOneGrant(
      t,
      'memory',
      (REFRESH_TTL + 1) * 1000,
    )
    const shared = withCookieOf(laptop.jar)
    t.equal((await login(base, { user: 'bob', jar: shared })).callback.status, 302, 'bob replaces one')
    t.equal(stack.idp.stats.revokedGrants, 1, 'alice’s grant is revoked')
    t.equal(
      (await stack.idp.introspect(phoneToken)).active,
      false,
      'her phone’s refresh token is dead at the IdP',
    )
    t.ok(
      log.lines.find((l) => /replaced by a new sign-in: its refresh token was revoked/.test(l.msg)),
      'and the log says so',
    )
    const after = await apiCall(shared, `${base}/api/scoped`)
    t.equal(after.status, 200, 'bob’s session refreshes', { body: after.text })
  },
)
