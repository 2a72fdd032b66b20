/**
 * Session fixation (docs/security.md): a browser that completes a sign-in
 * while it still carries a session cookie, its own of before or one an
 * attacker planted, comes away with a new cookie naming a new session, and
 * the session the old cookie named is gone from the store, even when the
 * two are sessions of different identity providers.
 */
import t from 'tap'
import { sessionRefOf } from '../helpers/app.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { refreshingStack } from '../helpers/refreshing-stack.js'
import { startTwoIdps } from '../helpers/two-idps.js'

t.test(
  "a sign-in at one provider over a live session of another's replaces the cookie and ends the old session",
  async (t) => {
    const set = await startTwoIdps(t)
    const base = set.urls[0]!
    const app = set.apps[0]!
    const store = app.gatehouse.stores.sessions

    // Mallory signs in at corp, and her cookie ends up in Alice's browser.
    const mallory = await login(base, { user: 'mallory', params: { idp: 'corp' } })
    const planted = mallory.jar.get(base, 'gatehouse')!
    const plantedRef = sessionRefOf(app, planted)
    const alice = new CookieJar()
    alice.set(base, 'gatehouse', planted)
    t.equal((await apiCall(alice, `${base}/auth/user`)).json().sub, 'mallory', 'the planted cookie works')

    const signedIn = await login(base, { user: 'alice', params: { idp: 'partner' }, jar: alice })
    t.equal(signedIn.callback.status, 302)
    const cookie = alice.get(base, 'gatehouse')!
    t.not(cookie, planted, 'the sign-in set a new cookie')
    t.not(sessionRefOf(app, cookie).id, plantedRef.id, 'naming a new session')
    const user = (await apiCall(alice, `${base}/auth/user`)).json()
    t.match(user, { idp: 'partner', sub: 'alice' })

    t.equal(
      await store.get(plantedRef, Date.now(), { touch: false }),
      undefined,
      'the session the planted cookie named is gone from the store',
    )
    t.equal((await apiCall(mallory.jar, `${base}/auth/user`)).status, 401, 'so Mallory is no longer in it')
  },
)

/**
 * The grant of the session a sign-in replaces. The record was deleted,
 * but its refresh token was never revoked, so the IdP kept the grant of
 * the user who left this browser alive until it expired, though no
 * session could ever use it. It is now revoked as at logout, unless the
 * new session or another live one may hold the same grant: revoking a
 * refresh token revokes its grant (RFC 7009 §2.1), and oidc-provider
 * continues the grant of the browser's IdP session.
 */

t.test('a sign-in as another user revokes the grant of the session it replaces', async (t) => {
  const { stack, base, log, refreshTokenOf, withCookieOf } = await refreshingStack(t)
  const alice = await login(base)
  const alicesToken = await refreshTokenOf(alice.jar)

  const browser = withCookieOf(alice.jar)
  const bob = await login(base, { user: 'bob', jar: browser })
  t.equal(bob.callback.status, 302, 'bob signs in over alice’s session')
  t.equal(stack.idp.stats.revokedGrants, 1, 'alice’s grant is revoked')
  t.equal((await stack.idp.introspect(alicesToken)).active, false, 'her refresh token is dead at the IdP')
  t.ok(
    log.lines.find((line) => /replaced by a new sign-in: its refresh token was revoked/.test(line.msg)),
    'and the log says so',
  )
  const after = await apiCall(browser, `${base}/api/scoped`)
  t.equal(after.status, 200, 'bob’s session refreshes', { body: after.text })
  t.equal((await apiCall(browser, `${base}/auth/user`)).json().sub, 'bob')
})

t.test(
  'at an IdP without a revocation endpoint the log says the replaced session’s refresh token lives on, not that it was revoked',
  async (t) => {
    const { stack, base, log, refreshTokenOf, withCookieOf } = await refreshingStack(t, {
      idp: { quirks: { noRevocation: true } },
    })
    const alice = await login(base)
    const alicesToken = await refreshTokenOf(alice.jar)

    const bob = await login(base, { user: 'bob', jar: withCookieOf(alice.jar) })
    t.equal(bob.callback.status, 302, 'bob signs in over alice’s session')
    t.equal((await apiCall(alice.jar, `${base}/auth/user`)).status, 401, 'which is ended all the same')
    t.equal((await stack.idp.introspect(alicesToken)).active, true, 'her refresh token is alive at the IdP')
    t.notOk(
      log.lines.some((line) => /replaced by a new sign-in: its refresh token was revoked/.test(line.msg)),
      'no line claims a revocation that never happened',
    )
    t.ok(
      log.lines.some((line) =>
        /replaced by a new sign-in: the identity provider offers no revocation endpoint, so its refresh token stays valid there until it expires/.test(
          line.msg,
        ),
      ),
      'one says why it lives on',
    )
  },
)

t.test('a sign-in again in the same IdP session keeps the grant the new session continues', async (t) => {
  const { stack, base, refreshTokenOf } = await refreshingStack(t)
  const first = await login(base)
  const firstToken = await refreshTokenOf(first.jar)

  const again = await login(base, { jar: first.jar })
  t.equal(again.callback.status, 302, 'alice signs in again in the same browser')
  t.equal(stack.idp.stats.revokedGrants, 0, 'the grant is not revoked')
  t.equal((await stack.idp.introspect(firstToken)).active, true, 'the replaced session’s token lives on')
  const after = await apiCall(first.jar, `${base}/api/scoped`)
  t.equal(after.status, 200, 'and the new session refreshes', { body: after.text })
})

t.test(
  'with sids, a sign-in of the same user in another IdP session keeps the old one’s grant: the IdP may revoke per user',
  async (t) => {
    // Registered for back-channel logout, the client is told the IdP session (`sid`) in every ID token.
    const { stack, base, refreshTokenOf, withCookieOf } = await refreshingStack(t, {
      backchannelLogout: true,
    })
    const first = await login(base)
    const firstToken = await refreshTokenOf(first.jar)

    const browser = withCookieOf(first.jar)
    const again = await login(base, { jar: browser })
    t.equal(again.callback.status, 302, 'alice signs in again at a new IdP session')
    // oidc-provider gave the new IdP session a grant of its own: the old
    // one lapses by itself, the price of not signing alice out at an IdP
    // that revokes per user (below).
    t.equal(stack.idp.stats.revokedGrants, 0, 'the old IdP session’s grant is not revoked')
    t.equal((await stack.idp.introspect(firstToken)).active, true)
    const after = await apiCall(browser, `${base}/api/scoped`)
    t.equal(after.status, 200, 'the new session refreshes', { body: after.text })
  },
)

t.test('without sids, a sign-in of the same user keeps the old grant: it may be the new one', async (t) => {
  const { stack, base, refreshTokenOf, withCookieOf } = await refreshingStack(t)
  const first = await login(base)
  const firstToken = await refreshTokenOf(first.jar)

  const browser = withCookieOf(first.jar)
  t.equal((await login(base, { jar: browser })).callback.status, 302, 'alice signs in again')
  t.equal(stack.idp.stats.revokedGrants, 0, 'no grant is revoked')
  t.equal((await stack.idp.introspect(firstToken)).active, true)
})

t.test('the replaced session’s grant is kept while another live session may hold it', async (t) => {
  const { stack, base, withCookieOf } = await refreshingStack(t)
  const first = await login(base)
  const replaced = withCookieOf(first.jar)
  // The same IdP session signs alice in once more without that cookie:
  // a second session of the same grant, as at another frontend.
  first.jar.delete(base, 'gatehouse')
  const second = await login(base, { jar: first.jar })
  t.equal(second.callback.status, 302, 'alice has two sessions of one grant')

  t.equal((await login(base, { user: 'bob', jar: replaced })).callback.status, 302, 'bob replaces one')
  t.equal(stack.idp.stats.revokedGrants, 0, 'the grant the other holds is not revoked')
  const after = await apiCall(first.jar, `${base}/api/scoped`)
  t.equal(after.status, 200, 'and alice’s other session refreshes', { body: after.text })
})

t.test('a sign-in over a live session while the store cannot answer keeps the old grant', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
  const redis: TestRedis = await startRedis()
  t.teardown(() => redis.stop())
  let freeze = false
  const { stack, base, log, refreshTokenOf, withCookieOf } = await refreshingStack(t, {
    idp: {
      userinfoSubject: (sub) => {
        // After the code exchange and before the replaced session is read: the store stops answering.
        if (freeze) redis.freeze()
        return sub
      },
    },
    config: { store: redis.url, keyPrefix: redis.prefix, logLevel: 'info', oidc: { userinfo: true } },
  })
  const alice = await login(base)
  t.equal(alice.callback.status, 302, 'alice signed in')
  const alicesToken = await refreshTokenOf(alice.jar)

  freeze = true
  const bob = await login(base, { user: 'bob', jar: withCookieOf(alice.jar) })
  freeze = false
  redis.resume()
  t.equal(bob.callback.status, 503, 'bob’s sign-in cannot be stored')
  t.equal(stack.idp.stats.revokedGrants, 0, 'no grant is revoked')
  t.match(
    log.lines.find((line) => /replaced by a new sign-in: its refresh token is not revoked/.test(line.msg)),
    { level: 40, code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE' },
    'a warning says why, naming the store',
  )
  t.equal((await stack.idp.introspect(alicesToken)).active, true, 'alice’s refresh token lives on')
})

/**
 * An IdP that names IdP sessions (`sid`) need not keep a grant per IdP
 * session: Keycloak's revocation ends the client's sessions of the user
 * everywhere, and Auth0's (with "Refresh Token Revocation Deletes Grant")
 * every refresh token of the user at the client. Which kind an IdP is
 * cannot be told, so the same user's grant is kept, as unknown.
 */
t.test(
  'a sign-in of the same user in another IdP session, at an IdP that keeps one grant per user, keeps the new session refreshing',
  async (t) => {
    const { stack, base, refreshTokenOf, withCookieOf } = await refreshingStack(t, {
      backchannelLogout: true,
      idp: { quirks: { grantPerUser: true } },
    })
    const first = await login(base)
    const firstToken = await refreshTokenOf(first.jar)

    const browser = withCookieOf(first.jar)
    const again = await login(base, { jar: browser })
    t.equal(again.callback.status, 302, 'alice signs in again at a new IdP session')
    t.equal(stack.idp.stats.revokedGrants, 0, 'the grant, hers in every IdP session, is not revoked')
    t.equal((await stack.idp.introspect(firstToken)).active, true)
    const after = await apiCall(browser, `${base}/api/scoped`)
    t.equal(after.status, 200, 'and the new session refreshes', { body: after.text })
  },
)

t.test(
  'a sign-in as another user keeps the grant the replaced user’s session in another IdP session holds',
  async (t) => {
    const { stack, base, withCookieOf } = await refreshingStack(t, {
      backchannelLogout: true,
      idp: { quirks: { grantPerUser: true } },
    })
    const phone = await login(base)
    const laptop = await login(base)
    t.equal(laptop.callback.status, 302, 'alice has sessions in two IdP sessions, of one grant')

    const shared = withCookieOf(laptop.jar)
    t.equal((await login(base, { user: 'bob', jar: shared })).callback.status, 302, 'bob replaces one')
    t.equal(stack.idp.stats.revokedGrants, 0, 'alice’s grant is not revoked')
    const after = await apiCall(phone.jar, `${base}/api/scoped`)
    t.equal(after.status, 200, 'and her other session refreshes', { body: after.text })
  },
)
