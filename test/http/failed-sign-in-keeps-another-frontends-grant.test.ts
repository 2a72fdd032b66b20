/**
 * Two frontends that sign in at one client of one IdP share its grant:
 * oidc-provider keeps one grant per client in the browser's IdP session,
 * whichever redirect URI the code went to. A sign-in refused after the
 * code exchange at one frontend gave back its refresh token whenever that
 * frontend's cookie named no session, so it revoked the grant the user's
 * session at the other frontend held (another host: its cookie never
 * comes here), whose next refresh answered 401 session_expired.
 */
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startTwoFrontends } from '../helpers/two-frontends.js'

t.test("a sign-in refused at one frontend leaves the grant of the user's session at another", async (t) => {
  // Userinfo answering for another user (OIDC Core §5.3.2) is refused after the code exchange.
  let answerForAnother = false
  const s = await startTwoFrontends(
    t,
    (upstream) => ({
      // Its first request redeems the session's refresh token for a token of its own.
      staff: {
        identityProviders: ['corp'],
        routes: [route('/api/scoped', upstream, { scopes: ['openid', 'offline_access'] })],
      },
      partners: { identityProviders: ['corp'], routes: [] },
    }),
    {
      idp: () => ({ userinfoSubject: (sub) => (answerForAnother ? 'mallory' : sub) }),
      provider: () => ({ userinfo: true }),
    },
  )
  const staff = await login(s.staff)
  t.equal(staff.callback.status, 302, 'signed in at staff')

  answerForAnother = true
  // The same browser, so the same IdP session: partners is another host, and staff's cookie stays there.
  const partners = await login(s.partners, { jar: staff.jar })
  t.equal(partners.callback.status, 400, 'the sign-in at partners is refused')
  t.equal(s.corp.stats.revokedGrants, 0, 'the grant staff’s session holds is not revoked')
  answerForAnother = false
  const after = await apiCall(staff.jar, `${s.staff}/api/scoped`)
  t.equal(after.status, 200, 'and staff’s session still refreshes', { body: after.text })

  // This IdP names no IdP session (no sid): a grant of a user with a session at another frontend is kept.
  answerForAnother = true
  const elsewhere = await login(s.partners, { user: 'bob' })
  t.equal(elsewhere.callback.status, 400, 'a refused sign-in of a user with no session anywhere')
  t.equal(s.corp.stats.revokedGrants, 1, 'gives back the grant no session holds')
})
