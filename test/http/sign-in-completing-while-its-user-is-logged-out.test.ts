import { exportJWK, generateKeyPair } from 'jose'
import t, { type Test } from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { startRedis } from '../helpers/redis.js'
import { startStack } from '../helpers/stack.js'

/**
 * A logout token naming only a `sub` (no `sid`: §2.4 then means every
 * session of that user at the RP) that came while a sign-in of that user
 * completed (its code redeemed, its record not yet written) listed the
 * user's sessions, found none, and answered 200 {"ended":0}; the record
 * was written just after and the session served, signed in past the
 * logout. Such a token now notes when it came for that user, and a
 * sign-in that started before then ends once its record is written; one
 * started after it (the user signing in again) stands.
 */
async function signInRacesItsUsersLogout(t: Test, store: { store: string; keyPrefix: string } | undefined) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
  const { idp, gateway } = await startStack(t, {
    accessTokenTtl: 600,
    idp: { signingKey },
    routes: (upstream) => [route('/api/orders', upstream)],
    config: { logLevel: 'silent', ...store },
  })
  const base = gateway.url
  const sessions = gateway.app.gatehouse.stores.sessions
  const bob = await login(base, { user: 'bob' })
  // The seam: the IdP's logout of the user lands after the callback's
  // checks, just before the session is stored.
  const create = sessions.create.bind(sessions)
  let delivery: Awaited<ReturnType<typeof jarFetch>> | undefined
  sessions.create = async (session) => {
    sessions.create = create
    const token = await signLogoutToken(
      { issuer: idp.issuer, audience: CLIENT_ID, key: privateKey, kid: 'idp-key' },
      { sub: 'alice' },
    )
    delivery = await jarFetch(new CookieJar(), `${base}/auth/backchannel-logout`, {
      method: 'POST',
      body: new URLSearchParams({ logout_token: token }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    return create(session)
  }
  const alice = await login(base, { user: 'alice' })
  t.equal(delivery?.status, 200, 'the logout was answered 200')
  t.equal(alice.callback.status, 400, 'the sign-in fails')
  t.match(alice.callback.text, /logged this sign-in(&#39;|')s user out \(back-channel logout\)/)
  t.equal((await apiCall(alice.jar, `${base}/api/orders`)).status, 401, 'no session serves')
  t.same(await sessions.idsBySub('alice'), [], 'and none is left in the store')
  t.equal((await apiCall(bob.jar, `${base}/api/orders`)).status, 200, "another user's session stays")

  const again = await login(base, { user: 'alice' })
  t.equal(again.callback.status, 302, 'a sign-in started after the logout is not refused')
  t.equal((await apiCall(again.jar, `${base}/api/orders`)).status, 200)
}

t.test('memory store: a sign-in that completes after a logout of its user (sub only) does not stand', (t) =>
  signInRacesItsUsersLogout(t, undefined),
)

t.test(
  'Redis store: a sign-in that completes after a logout of its user (sub only) does not stand',
  async (t) => {
    const redis = await startRedis()
    t.teardown(() => redis.stop())
    await signInRacesItsUsersLogout(t, { store: redis.url, keyPrefix: redis.prefix })
  },
)
