import { exportJWK, generateKeyPair } from 'jose'
import t, { type Test } from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route, STRICT_OP_PARAMS } from '../helpers/gateway.js'
import { apiCall, followLoginFlow, jarFetch } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { startRedis } from '../helpers/redis.js'
import { startStack } from '../helpers/stack.js'

const seconds = () => Math.floor(Date.now() / 1000)

/**
 * A logout token naming only a `sub` notes when it came, and a sign-in of
 * that user that started before then fails once its record is written
 * (`sign-in-completing-while-its-user-is-logged-out.test.ts`). That rule
 * also failed a sign-in the user had authenticated for at the IdP after the
 * logout: started before it, but no part of the IdP session it ended.
 * Now the note keeps the token's `iat` (the IdP's clock), and an ID token
 * whose `auth_time` (the IdP's clock too) is after it is a fresh
 * authentication, which stands; one authenticated before the logout, and
 * one whose ID token says nothing of when, fail as before.
 */
async function signInsAroundAUsersLogout(t: Test, store: { store: string; keyPrefix: string } | undefined) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
  const stackOf = (authorizationParams: Record<string, string>) =>
    startStack(t, {
      accessTokenTtl: 600,
      idp: { signingKey },
      routes: (upstream) => [route('/api/orders', upstream)],
      config: { logLevel: 'silent', ...store, oidc: { authorizationParams } },
    })
  // max_age makes oidc-provider put auth_time in the ID token (OIDC Core §2).
  const withAuthTime = await stackOf({ ...STRICT_OP_PARAMS, max_age: '600' })
  const withoutAuthTime = await stackOf(STRICT_OP_PARAMS)

  const logOut = async (base: string, issuer: string, iat: number) => {
    const token = await signLogoutToken(
      { issuer, audience: CLIENT_ID, key: privateKey, kid: 'idp-key' },
      { sub: 'alice', iat },
    )
    return jarFetch(new CookieJar(), `${base}/auth/backchannel-logout`, {
      method: 'POST',
      body: new URLSearchParams({ logout_token: token }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
  }

  /** Starts a sign-in, delivers the IdP's logout of alice, then she authenticates at the IdP. */
  const authenticatedAfterTheLogout = async ({ idp, gateway }: typeof withAuthTime) => {
    const base = gateway.url
    const jar = new CookieJar()
    const start = await jarFetch(jar, `${base}/auth/login?returnTo=/`)
    t.equal(start.status, 302)
    // Issued by the IdP a moment before it was delivered, and before she
    // authenticates below: by the IdP's clock, the authentication comes after.
    t.equal((await logOut(base, idp.issuer, seconds() - 2)).status, 200, 'the logout was answered 200')
    const callback = await jarFetch(jar, await followLoginFlow(jar, start.location!, 'alice'))
    return { base, jar, callback }
  }

  t.test('an ID token with auth_time after the logout token’s iat: the sign-in stands', async (t) => {
    const { base, jar, callback } = await authenticatedAfterTheLogout(withAuthTime)
    t.equal(callback.status, 302, 'signed in')
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'and the session serves')
  })

  t.test('an ID token without auth_time: the sign-in started before the logout fails', async (t) => {
    const { base, jar, callback } = await authenticatedAfterTheLogout(withoutAuthTime)
    t.equal(callback.status, 400, 'refused, as the start time alone cannot tell it is fresh')
    t.match(callback.text, /logged this sign-in(&#39;|')s user out \(back-channel logout\)/)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401)
  })

  t.test('an ID token with auth_time before the logout token’s iat: the sign-in fails', async (t) => {
    const { idp, gateway } = withAuthTime
    const base = gateway.url
    const sessions = gateway.app.gatehouse.stores.sessions
    const jar = new CookieJar()
    const start = await jarFetch(jar, `${base}/auth/login?returnTo=/`)
    const callbackUrl = await followLoginFlow(jar, start.location!, 'alice')
    // She has authenticated; the IdP's logout of her lands after the
    // callback's checks, just before the session is stored. Its iat is
    // this second: an auth_time in the same second may be either side of
    // it, and is no proof of a fresh authentication.
    const create = sessions.create.bind(sessions)
    let delivery: Awaited<ReturnType<typeof jarFetch>> | undefined
    sessions.create = async (session) => {
      sessions.create = create
      delivery = await logOut(base, idp.issuer, seconds())
      return create(session)
    }
    const callback = await jarFetch(jar, callbackUrl)
    t.equal(delivery?.status, 200, 'the logout was answered 200')
    t.equal(callback.status, 400, 'the sign-in fails')
    t.match(callback.text, /logged this sign-in(&#39;|')s user out \(back-channel logout\)/)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'no session serves')
    t.same(await sessions.idsBySub('alice'), [], 'and none is left in the store')
  })
}

t.test('memory store: sign-ins around a logout of their user (sub only), by auth_time', (t) =>
  signInsAroundAUsersLogout(t, undefined),
)

t.test('Redis store: sign-ins around a logout of their user (sub only), by auth_time', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  await signInsAroundAUsersLogout(t, { store: redis.url, keyPrefix: redis.prefix })
})
