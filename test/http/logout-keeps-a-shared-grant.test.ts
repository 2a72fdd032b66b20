/**
 * Logout revokes the session's refresh token (RFC 7009), and revoking a
 * refresh token revokes its grant (§2.1). The grant may be another live
 * session's too: oidc-provider keeps one per client in the browser's IdP
 * session, so two frontends that sign in at one client share it in one
 * browser; Keycloak and Auth0 keep or revoke one per user and client, so
 * the user's sessions in other browsers share it. Logout at one frontend,
 * or in one browser, revoked it all the same, and the other session's next
 * refresh answered 401 session_expired: the gateway signed the user out
 * where they had not asked. It is now kept, as a sign-in keeps the grant
 * of a session it replaces (sign-in-over-a-live-session.test.ts); whether
 * the user's other sessions end is the IdP's to say, at its end-session
 * endpoint and by back-channel logout.
 */
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, followLogoutLink, jarFetch, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { refreshingStack } from '../helpers/refreshing-stack.js'
import { LogLines } from '../helpers/reloadable.js'
import { type FrontendChoices, startTwoFrontends } from '../helpers/two-frontends.js'

/** Both frontends sign in at corp; each has a route that redeems the session's refresh token at its first request. */
const bothAtCorp: FrontendChoices = (upstream) => ({
  staff: {
    identityProviders: ['corp'],
    routes: [route('/api/scoped', upstream, { scopes: ['openid', 'offline_access'] })],
  },
  partners: {
    identityProviders: ['corp'],
    routes: [route('/api/scoped', upstream, { scopes: ['openid', 'offline_access'] })],
  },
})

t.test('logout at one frontend keeps the grant the same browser’s session at another holds', async (t) => {
  const log = new LogLines()
  const s = await startTwoFrontends(t, bothAtCorp, { config: { logLevel: 'info' }, logStream: log.stream })
  const staff = await login(s.staff)
  t.equal(staff.callback.status, 302, 'signed in at staff')
  // The same browser, so the same IdP session and, at oidc-provider, the same grant.
  const partners = await login(s.partners, { jar: staff.jar })
  t.equal(partners.callback.status, 302, 'and at partners')

  const out = await followLogoutLink(staff.jar, s.partners)
  t.equal(out.status, 200, 'logged out at partners: the page that posts to the IdP')
  t.equal((await apiCall(staff.jar, `${s.partners}/auth/user`)).status, 401, 'partners’ session is over')
  t.equal(s.corp.stats.revokedGrants, 0, 'the grant staff’s session holds is not revoked')
  t.ok(
    log.lines.find((l) =>
      /^logout: its refresh token is not revoked, since another session of its user may share its grant/.test(
        l.msg,
      ),
    ),
    'and the log says why',
  )
  const after = await apiCall(staff.jar, `${s.staff}/api/scoped`)
  t.equal(after.status, 200, 'staff’s session still refreshes', { body: after.text })
})

t.test(
  'logout in one browser, at an IdP that keeps one grant per user, keeps the user’s session in another',
  async (t) => {
    const { stack, base } = await refreshingStack(t, { idp: { quirks: { grantPerUser: true } } })
    const phone = await login(base)
    const laptop = await login(base)
    t.equal(laptop.callback.status, 302, 'alice has sessions in two browsers, of one grant')

    t.equal((await followLogoutLink(laptop.jar, base)).status, 200, 'she logs out on the laptop')
    t.equal((await apiCall(laptop.jar, `${base}/auth/user`)).status, 401, 'the laptop’s session is over')
    t.equal(stack.idp.stats.revokedGrants, 0, 'her grant is not revoked')
    const after = await apiCall(phone.jar, `${base}/api/scoped`)
    t.equal(after.status, 200, 'and the phone’s session still refreshes', { body: after.text })
  },
)

t.test('logout of a user’s only session revokes its grant', async (t) => {
  const { stack, base } = await refreshingStack(t, { idp: { quirks: { grantPerUser: true } } })
  const bob = await login(base, { user: 'bob' })
  const alice = await login(base)
  t.equal(alice.callback.status, 302, 'another user’s session does not count')

  t.equal((await followLogoutLink(alice.jar, base)).status, 200)
  t.equal(stack.idp.stats.revokedGrants, 1, 'her grant is revoked')
  t.equal((await apiCall(bob.jar, `${base}/api/scoped`)).status, 200, 'bob’s session refreshes')
})

/**
 * Alice signed in at a stack on a redis-server of the test's own, which a
 * test may freeze or change under her logout, and her logout link.
 */
async function signedInOnRedisOfItsOwn(t: Test) {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const { stack, base } = await refreshingStack(t, { config: { store: redis.url, keyPrefix: redis.prefix } })
  const alice = await login(base)
  const { logoutUrl } = (await apiCall(alice.jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()
  return { redis, stack, base, alice, logoutUrl }
}

/**
 * With the store unable to answer which sessions share the grant, the
 * logout is not half done: unknown is not "none", so nothing is revoked,
 * and the session, still in the store, stays for the user to try again.
 * Until 2026-12-07 the token was revoked first and the session's deletion
 * then failed: a 503, and a session left whose grant was dead.
 */
t.test(
  'logout while the store cannot answer: 503 with Retry-After, nothing revoked, the session stays',
  async (t) => {
    if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
    const { redis, stack, base, alice, logoutUrl } = await signedInOnRedisOfItsOwn(t)
    redis.freeze()
    const out = await jarFetch(alice.jar, `${base}${logoutUrl}`)
    redis.resume()
    t.equal(out.status, 503, 'the store is unavailable', { body: out.text })
    t.match(out.text, /The session store is unavailable/, 'the page says so')
    t.ok(Number(out.headers.get('retry-after')) >= 1, 'with Retry-After')
    t.equal(stack.idp.stats.revokedGrants, 0, 'her grant is not revoked')
    t.equal((await apiCall(alice.jar, `${base}/auth/user`)).status, 200, 'and her session stays')
    const after = await apiCall(alice.jar, `${base}/api/scoped`)
    t.equal(after.status, 200, 'it still refreshes', { body: after.text })
  },
)

/**
 * The store answers which sessions exist, and then refuses to delete the
 * session (a primary short of the replicas `min-replicas-to-write` asks
 * for refuses every write, and an index read prunes, so that cannot be
 * it: here an ACL takes DEL from the gateway's user, which refuses the
 * deletion alone). Until 2026-12-07 the token was revoked before the
 * deletion was tried: a 503 whose session stayed in the store with its
 * grant dead, so the user, still signed in, was answered 401 at the next
 * refresh, and the logout tried again found no session.
 */
t.test(
  'logout whose session the store will not delete: 503, nothing revoked, the session stays',
  async (t) => {
    if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
    const { redis, stack, base, alice, logoutUrl } = await signedInOnRedisOfItsOwn(t)
    const admin = new Redis(redis.url)
    t.teardown(() => admin.quit())
    await admin.acl('SETUSER', 'default', '-del')
    const out = await jarFetch(alice.jar, `${base}${logoutUrl}`)
    await admin.acl('SETUSER', 'default', '+del')
    t.equal(out.status, 503, 'the store refused the deletion', { body: out.text })
    t.equal(stack.idp.stats.revokedGrants, 0, 'her grant is not revoked')
    t.equal((await apiCall(alice.jar, `${base}/auth/user`)).status, 200, 'her session stays')
    const after = await apiCall(alice.jar, `${base}/api/scoped`)
    t.equal(after.status, 200, 'and still refreshes', { body: after.text })
    t.equal((await jarFetch(alice.jar, `${base}${logoutUrl}`)).status, 200, 'the logout tried again ends it')
    t.equal(stack.idp.stats.revokedGrants, 1, 'and revokes her grant')
  },
)
