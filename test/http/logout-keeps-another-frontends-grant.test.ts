/**
 * Two frontends that sign in at one client of one IdP share its grant:
 * oidc-provider keeps one grant per client in the browser's IdP session.
 * A logout at one frontend revoked its session's refresh token, and so
 * (RFC 7009 §2.1) the grant the user's session at the other frontend held:
 * that session's next refresh answered 401 session_expired, ended by a
 * logout it never saw, before the browser had even reached the IdP's
 * end-session page.
 */
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { type FrontendChoices, startTwoFrontends } from '../helpers/two-frontends.js'

/** Both frontends sign in at corp; each one's route redeems the session's refresh token at its first request. */
const bothAtCorp: FrontendChoices = (upstream) => ({
  staff: {
    identityProviders: ['corp'],
    routes: [route('/api/scoped', upstream, { scopes: ['openid', 'offline_access'] })],
  },
  partners: {
    identityProviders: ['corp'],
    routes: [route('/api/partner-scoped', upstream, { scopes: ['openid', 'offline_access'] })],
  },
})

const redis = await startRedis()
t.teardown(() => redis.stop())

for (const store of ['memory', 'redis'] as const) {
  const config = store === 'redis' ? { store: redis.url, keyPrefix: `${redis.prefix}lo:` } : {}

  t.test(
    `${store}: a logout at one frontend leaves the grant of the user's session at another`,
    async (t) => {
      const s = await startTwoFrontends(t, bothAtCorp, { config })
      const staff = await login(s.staff)
      t.equal(staff.callback.status, 302, 'signed in at staff')
      // The same browser, so the same IdP session and the same grant: partners is another host.
      const partners = await login(s.partners, { jar: staff.jar })
      t.equal(partners.callback.status, 302, 'signed in at partners')

      const { logoutUrl } = (await apiCall(staff.jar, `${s.partners}/auth/user`)).json<{
        logoutUrl: string
      }>()
      const out = await jarFetch(staff.jar, `${s.partners}${logoutUrl}`)
      t.ok(out.status === 200 || out.status === 302, `partners' logout answers (${out.status})`)
      t.equal(
        (await apiCall(staff.jar, `${s.partners}/auth/user`)).status,
        401,
        'the partners session is over',
      )
      t.equal(s.corp.stats.revokedGrants, 0, "the grant staff's session holds is not revoked")
      const after = await apiCall(staff.jar, `${s.staff}/api/scoped`)
      t.equal(after.status, 200, "and staff's session still refreshes", { body: after.text })
    },
  )

  t.test(`${store}: a logout of the only session of its user still revokes its grant`, async (t) => {
    const s = await startTwoFrontends(t, bothAtCorp, { config })
    const alone = await login(s.partners, { user: 'bob' })
    t.equal(alone.callback.status, 302, 'signed in at partners')
    const { logoutUrl } = (await apiCall(alone.jar, `${s.partners}/auth/user`)).json<{ logoutUrl: string }>()
    await jarFetch(alone.jar, `${s.partners}${logoutUrl}`)
    t.equal(s.corp.stats.revokedGrants, 1, 'the grant no other session holds is given back (RFC 7009)')
  })
}
