/**
 * A sign-in refused after the code exchange revokes the refresh token it
 * was issued, unless the browser holds a session already: oidc-provider
 * continues the grant of the browser's IdP session, and revoking a refresh
 * token revokes its grant (RFC 7009 §2.1), which ended the session that
 * still worked (401 session_expired at its next refresh). The IdP here
 * names no IdP session (no sid): a user with a session keeps the grant of
 * a refused sign-in in any browser (failed-sign-in-keeps-another-frontends-grant.test.ts).
 */
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { defaultRoutes, startStack } from '../helpers/stack.js'

t.test('a refused second sign-in in the same browser leaves its live session working', async (t) => {
  // Userinfo answering for another user (OIDC Core §5.3.2) is refused after the code exchange.
  let answerForAnother = false
  const stack = await startStack(t, {
    idp: { userinfoSubject: (sub) => (answerForAnother ? 'mallory' : sub) },
    config: { oidc: { userinfo: true } },
    // Its first request redeems the session's refresh token for a token of its own.
    routes: (upstream) => [
      ...defaultRoutes(upstream),
      route('/api/scoped', upstream, { scopes: ['openid', 'offline_access'] }),
    ],
  })
  const base = stack.gateway.url
  const first = await login(base)
  t.equal(first.callback.status, 302, 'the first sign-in')

  answerForAnother = true
  const second = await login(base, { jar: first.jar })
  t.equal(second.callback.status, 400, 'the second is refused')
  t.equal(stack.idp.stats.revokedGrants, 0, 'the grant the browser’s session holds is not revoked')
  answerForAnother = false
  const after = await apiCall(first.jar, `${base}/api/scoped`)
  t.equal(after.status, 200, 'and the session still refreshes', { body: after.text })

  answerForAnother = true
  // Another user: his, the IdP names no sid, could share the grant of the first session's user.
  const fresh = await login(base, { jar: new CookieJar(), user: 'bob' })
  t.equal(fresh.callback.status, 400, 'a refused sign-in of a user with no session, in a browser with none')
  t.equal(stack.idp.stats.revokedGrants, 1, 'gives back the grant no session holds')
})

t.test(
  'a refused sign-in in another IdP session, at an IdP that keeps one grant per user, leaves the user’s session elsewhere working',
  async (t) => {
    let answerForAnother = false
    const stack = await startStack(t, {
      // Every ID token names its IdP session (`sid`), and the IdP revokes per user and
      // client whatever the IdP session, as Keycloak and Auth0 do (dev/idp-quirks.ts).
      backchannelLogout: true,
      idp: {
        quirks: { grantPerUser: true },
        userinfoSubject: (sub) => (answerForAnother ? 'mallory' : sub),
      },
      config: { oidc: { userinfo: true } },
      routes: (upstream) => [
        ...defaultRoutes(upstream),
        route('/api/scoped', upstream, { scopes: ['openid', 'offline_access'] }),
      ],
    })
    const base = stack.gateway.url
    const phone = await login(base)
    t.equal(phone.callback.status, 302, 'alice signs in on her phone')

    answerForAnother = true
    const laptop = await login(base, { jar: new CookieJar() })
    answerForAnother = false
    t.equal(laptop.callback.status, 400, 'her sign-in on a laptop, another IdP session, is refused')
    t.equal(stack.idp.stats.revokedGrants, 0, 'her grant, the same in every IdP session, is not revoked')
    const after = await apiCall(phone.jar, `${base}/api/scoped`)
    t.equal(after.status, 200, 'and her phone’s session still refreshes', { body: after.text })
  },
)
