/**
 * A refresh the IdP answered 200 and the gateway refused (here a negative
 * `expires_in`) still rotated the refresh token, and the session keeps the
 * new one (refused-answer-keeps-rotated-refresh-token.test.ts) without the
 * spent one's expiry (rotated-token-kept-without-the-spent-ones-expiry.test.ts).
 * But the same answer said when the new one expires (`refresh_expires_in`),
 * and that was dropped: the session read as able to refresh forever, so a
 * logout in another browser past that expiry kept the grant alive for a
 * session that could no longer use it, as it would not have after an
 * accepted refresh.
 *
 * The gateway's clock is moved, not the IdP's, as in the tests above.
 */
import t from 'tap'
import { rotatedIn, UNKEPT } from '../../src/oidc/rotated.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, followLogoutLink, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { refreshingStack } from '../helpers/refreshing-stack.js'

const REFRESH_TTL = 600 // s, the IdP's refresh-token lifetime, which it reports (refresh_expires_in)

const redis = await startRedis()
t.teardown(() => redis.stop())

for (const store of ['memory', 'redis'] as const) {
  t.test(
    `${store}: a refused 200's rotated refresh token keeps the expiry that answer gave it`,
    async (t) => {
      const clock = new TestClock()
      const { stack, base, log } = await refreshingStack(t, {
        idp: {
          refreshTokenTtl: REFRESH_TTL,
          refreshExpiresIn: true,
          quirks: { grantPerUser: true, negativeExpiresInOnRefresh: true },
        },
        config: store === 'redis' ? { store: redis.url, keyPrefix: `${redis.prefix}rotkx:` } : {},
        gateway: { now: clock.now },
      })
      const phone = await login(base)
      // The phone's access token has expired: its refresh is a 200 the gateway refuses.
      clock.advance(61_000)
      t.equal((await apiCall(phone.jar, `${base}/api/orders`)).status, 503, 'the refresh answer is refused')
      const refusedAt = clock.now()

      const listed = await stack.gateway.app.gatehouse.stores.sessions.sessionsOfUser('alice')
      t.equal(listed.length, 1)
      const expiresAt = listed[0]!.refreshTokenExpiresAt ?? Number.NaN
      // The IdP counts the seconds on its own clock, which has moved on by the time it answers.
      t.ok(
        expiresAt > refusedAt + (REFRESH_TTL - 5) * 1000 && expiresAt <= refusedAt + REFRESH_TTL * 1000,
        `the store knows the rotated token's expiry from its answer (${expiresAt - refusedAt} ms after the refusal)`,
      )

      // The laptop signs in later, so its own refresh token outlives the phone's.
      clock.advance(300_000)
      const laptop = await login(base)
      t.equal(laptop.callback.status, 302, 'alice has sessions in two browsers, of one grant')
      clock.advance((REFRESH_TTL - 300 + 1) * 1000)
      t.equal((await followLogoutLink(laptop.jar, base)).status, 200, 'she logs out on the laptop')
      t.equal(
        stack.idp.stats.revokedGrants,
        1,
        "her grant is revoked: the phone's refresh token expired when its answer said, and no session can use the grant",
      )
      t.notOk(
        log.lines.find((l) => /^logout: its refresh token is not revoked, since another session/.test(l.msg)),
        'no line says another session may share it',
      )
    },
  )
}

t.test('only a positive number of seconds is taken as the expiry, counted on the given clock', async (t) => {
  const answer = (body: Record<string, unknown>) => new Response(JSON.stringify(body))
  const now = () => 1_000_000
  t.same(await rotatedIn(answer({ refresh_token: 'r', refresh_expires_in: 30 }), 100, now), {
    refreshToken: 'r',
    expiresAt: 1_030_000,
  })
  t.same(await rotatedIn(answer({ refresh_token: 'r', refresh_token_expires_in: 30 }), 100, now), {
    refreshToken: 'r',
    expiresAt: 1_030_000,
  })
  for (const bad of [0, -5, '30', null, true])
    t.same(
      await rotatedIn(answer({ refresh_token: 'r', refresh_expires_in: bad }), 100, now),
      { refreshToken: 'r' },
      `${JSON.stringify(bad)} is no expiry`,
    )
  t.equal(
    await rotatedIn(answer({ refresh_token: 'r'.repeat(101), refresh_expires_in: 30 }), 100, now),
    UNKEPT,
  )
})
