import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { type DevIdp, type DevIdpOptions, startDevIdp } from '../../dev/idp.js'
import { seedSession } from '../helpers/app.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, CLIENT_SECRET, route, TestClock } from '../helpers/gateway.js'
import { apiCall, followLoginFlow, jarFetch, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { configText, type Reloadable, startReloadable } from '../helpers/reloadable.js'
import { until } from '../helpers/websocket.js'

/**
 * A reload that gives provider `a` another IdP's issuer: `a`'s sessions
 * hold tokens IdP A issued, and a refresh, revocation or end-session of
 * theirs at IdP B would hand B a secret of A's. They must end as a removed
 * provider's do, and nothing of theirs may reach B; a new sign-in at `a`
 * is B's, and refreshes there.
 */

const redis = await startRedis()
t.teardown(() => redis.stop())

/** A second real IdP, with the test client registered for provider `a`'s callback. */
async function secondIdp(
  t: Test,
  stack: Reloadable,
  options: Partial<Omit<DevIdpOptions, 'clients'>> = {},
): Promise<DevIdp> {
  const idp = await startDevIdp({
    accessTokenTtl: 60,
    ...options,
    clients: [
      {
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        redirectUris: [`${stack.url}/auth/callback/a`],
        postLogoutRedirectUris: [`${stack.url}/`],
      },
    ],
  })
  t.teardown(() => idp.close())
  return idp
}

/** Rewrites the config so that provider `a` is `issuer`, and waits until it runs. */
async function pointAt(stack: Reloadable, issuer: string): Promise<boolean> {
  stack.configMap.write(configText({ ...stack.input, identityProviders: [{ name: 'a', issuer }] }))
  return until(() => stack.running.config.identityProviders[0]!.issuer === issuer)
}

/** Every call IdP B could have been sent a token in. */
const seenBy = (idp: DevIdp) => ({
  tokenRequests: idp.stats.tokenRequests,
  revocations: idp.stats.revocations,
})

t.test(
  "a provider's issuer changed by a reload: its sessions end as a removed provider's, and send IdP B nothing",
  async (t) => {
    const clock = new TestClock()
    const stack = await startReloadable(
      t,
      (upstream) => [
        route('/api/orders', upstream),
        route('/api/a-only', upstream, { identityProviders: ['a'] }),
      ],
      {
        now: clock.now,
        input: (issuer) => ({
          identityProviders: [{ name: 'a', issuer }],
          store: redis.url,
          keyPrefix: `${redis.prefix}repointed:`,
        }),
      },
    )
    const idpA = stack.idp
    const idpB = await secondIdp(t, stack)
    const refreshing = await login(stack.url, { params: { idp: 'a' } })
    const leaving = await login(stack.url, { params: { idp: 'a' } })
    // A session sealed before sessions recorded their issuer and client id.
    const sealedBefore = await seedSession(stack.running.app, { idp: 'a' })
    const asSealedBefore = (path: string) =>
      fetch(`${stack.url}${path}`, { headers: { cookie: sealedBefore.cookie, 'x-csrf': '1' } })
    const user = async (jar: CookieJar) =>
      (await apiCall(jar, `${stack.url}/auth/user`)).json<{ idp: string; refreshable: boolean }>()
    t.match(await user(refreshing.jar), { idp: 'a', refreshable: true })
    t.match(
      await (await asSealedBefore('/auth/user')).json(),
      { idp: 'a', refreshable: true },
      'one sealed before the registration was recorded is taken to be of `a` as the gateway started with it',
    )

    t.ok(await pointAt(stack, idpB.issuer), 'the reload applies')
    t.match(
      await user(refreshing.jar),
      { idp: 'a', refreshable: false },
      "IdP A's session says it ends with its access token, as a removed provider's does",
    )
    t.match(
      await (await asSealedBefore('/auth/user')).json(),
      { idp: 'a', refreshable: false },
      'and ends like the others, now that `a` is no longer so',
    )
    t.equal(
      (await apiCall(refreshing.jar, `${stack.url}/api/orders`)).status,
      200,
      'its access token serves until it is due, as a removed provider’s does',
    )
    const onlyA = await apiCall(refreshing.jar, `${stack.url}/api/a-only`)
    t.equal(onlyA.status, 403, 'a route of provider `a`, which is IdP B now, refuses it')
    t.match(onlyA.json(), { error: 'wrong_identity_provider' })

    const logout = await apiCall(leaving.jar, `${stack.url}/auth/user`)
    const logoutUrl = logout.json<{ logoutUrl: string }>().logoutUrl
    const left = await jarFetch(leaving.jar, `${stack.url}${logoutUrl}`)
    t.equal(left.status, 302)
    t.equal(left.location, `${stack.url}/`, 'the logout ends here, with no end-session request to IdP B')
    t.equal((await apiCall(leaving.jar, `${stack.url}/auth/user`)).status, 401, 'and the session is over')

    // A sign-in at `a` now is IdP B's, and its session is B's to refresh.
    const fresh = await login(stack.url, { params: { idp: 'a' } })
    t.equal(fresh.callback.status, 302, 'a new sign-in at provider `a` goes through IdP B')
    t.match(await user(fresh.jar), { idp: 'a', refreshable: true })
    t.equal(idpB.stats.authorizationCodeGrants, 1)

    const refreshesAtA = idpA.stats.refreshGrants
    clock.advance(120_000)
    const due = await apiCall(refreshing.jar, `${stack.url}/api/orders`)
    t.equal(due.status, 401, "IdP A's session ends when its token is due")
    t.match(due.json(), { error: 'session_expired' })
    t.equal(idpA.stats.refreshGrants, refreshesAtA, 'its refresh went to no IdP')
    t.equal((await asSealedBefore('/api/orders')).status, 401, 'nor did that of the one sealed before')
    t.same(
      seenBy(idpB),
      { tokenRequests: 1, revocations: 0 },
      "IdP B saw the new sign-in's code and not one token of IdP A's sessions",
    )

    t.equal((await apiCall(fresh.jar, `${stack.url}/api/orders`)).status, 200, "IdP B's session refreshes")
    t.equal((await apiCall(fresh.jar, `${stack.url}/api/a-only`)).status, 200, 'and is served by `a`’s route')
    t.equal(idpB.stats.refreshGrants, 1, 'at IdP B')
  },
)

t.test(
  'a sign-in started before such a reload is refused at the callback: its code goes to neither IdP',
  async (t) => {
    // Without RFC 9207's `iss` (Entra ID, Google), nothing else tells the
    // callback whose code it holds.
    const withoutIss = { quirks: { noIssParameter: true } }
    const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
      idp: withoutIss,
      input: (issuer) => ({ identityProviders: [{ name: 'a', issuer }] }),
    })
    const idpB = await secondIdp(t, stack, withoutIss)
    const jar = new CookieJar()
    const start = await jarFetch(jar, `${stack.url}/auth/login?idp=a`)
    const callbackUrl = await followLoginFlow(jar, start.location!, 'alice')
    t.notOk(new URL(callbackUrl).searchParams.has('iss'), 'IdP A answers without `iss`')

    t.ok(await pointAt(stack, idpB.issuer), 'the reload applies')
    const callback = await jarFetch(jar, callbackUrl)
    t.equal(callback.status, 400, 'the sign-in page says it failed')
    t.match(callback.text, /now has another issuer or client id\. Start again\./)
    t.equal(idpB.stats.tokenRequests, 0, "IdP B was not sent IdP A's code")
    t.equal(stack.idp.stats.authorizationCodeGrants, 0, 'nor was IdP A, whose provider is gone')
    t.equal((await apiCall(jar, `${stack.url}/auth/user`)).status, 401, 'and there is no session')
  },
)

t.test(
  "IdP B's logouts end only IdP B's sessions of `a`, and log out everywhere only the user's own",
  async (t) => {
    const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
      input: (issuer) => ({
        identityProviders: [{ name: 'a', issuer }],
        store: redis.url,
        keyPrefix: `${redis.prefix}logouts:`,
      }),
    })
    const keys = await generateKeyPair('RS256', { extractable: true })
    const jwk = { ...(await exportJWK(keys.privateKey)), kid: 'b-key', alg: 'RS256', use: 'sig' }
    const idpB = await secondIdp(t, stack, { signingKey: jwk })
    const status = async (jar: CookieJar) => (await apiCall(jar, `${stack.url}/auth/user`)).status
    // Both IdPs know an `alice`: two users, one `sub`, as between real providers.
    const atA = [await login(stack.url), await login(stack.url)]
    t.ok(await pointAt(stack, idpB.issuer), 'the reload applies')
    const atB = await login(stack.url)

    const logoutToken = await new SignJWT({
      events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
      jti: crypto.randomUUID(),
      iat: Math.floor(Date.now() / 1000),
      sub: 'alice',
    })
      .setProtectedHeader({ alg: 'RS256', typ: 'logout+jwt', kid: 'b-key' })
      .setIssuer(idpB.issuer)
      .setAudience(CLIENT_ID)
      .sign(keys.privateKey)
    const backchannel = await fetch(`${stack.url}/auth/backchannel-logout/a`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: logoutToken }),
    })
    t.equal(backchannel.status, 200)
    t.same(await backchannel.json(), { ended: 1 }, "IdP B's logout of its alice ends her session")
    t.equal(await status(atB.jar), 401)
    t.same(
      [await status(atA[0]!.jar), await status(atA[1]!.jar)],
      [200, 200],
      "and not IdP A's alice's, another user",
    )

    const againAtB = await login(stack.url)
    const everywhere = await apiCall(atA[0]!.jar, `${stack.url}/auth/logout-everywhere`, { method: 'POST' })
    t.same(everywhere.json(), { ended: 2 }, "IdP A's alice ends both her sessions")
    t.equal(await status(atA[1]!.jar), 401)
    t.equal(await status(againAtB.jar), 200, "and not IdP B's alice's")
  },
)

t.test(
  "the gateway's own token cached from IdP A is not served for provider `a` once it is IdP B",
  async (t) => {
    const stack = await startReloadable(
      t,
      (upstream) => [
        route('/api/reports', upstream, { token: 'client', scopes: ['reports.read'], anonymous: true }),
      ],
      {
        input: (issuer) => ({
          identityProviders: [{ name: 'a', issuer }],
          // The copy every instance shares, which outlives a reload.
          store: redis.url,
          keyPrefix: `${redis.prefix}client:`,
        }),
      },
    )
    const idpB = await secondIdp(t, stack)
    const forwarded = async () => {
      t.equal((await fetch(`${stack.url}/api/reports`, { headers: { 'x-csrf': '1' } })).status, 200)
      return stack.upstream.requests.at(-1)!.authorization!.replace(/^Bearer /, '')
    }
    const fromA = await forwarded()
    t.equal(stack.idp.stats.clientCredentialsGrants, 1)

    t.ok(await pointAt(stack, idpB.issuer), 'the reload applies')
    const fromB = await forwarded()
    t.not(fromB, fromA, "IdP A's token is not served any more")
    t.equal(idpB.stats.clientCredentialsGrants, 1, 'a token of IdP B is fetched')
    t.ok(await idpB.isActive(fromB), "and sent: IdP B's own")
  },
)

t.test("the `oidc:` shorthand's issuer changed by a reload: its sessions end alike", async (t) => {
  const clock = new TestClock()
  const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], { now: clock.now })
  const idpB = await secondIdp(t, stack)
  const { jar } = await login(stack.url)
  stack.configMap.write(configText({ ...stack.input, issuer: idpB.issuer }))
  t.ok(await until(() => stack.running.config.oidc.issuer === idpB.issuer), 'the reload applies')
  t.match((await apiCall(jar, `${stack.url}/auth/user`)).json(), { idp: 'default', refreshable: false })
  clock.advance(120_000)
  t.equal(
    (await apiCall(jar, `${stack.url}/api/orders`)).status,
    401,
    'the session ends when its token is due',
  )
  t.equal(idpB.stats.tokenRequests, 0, 'and IdP B saw nothing of it')
})

/**
 * "Log out everywhere" revokes the refresh token of every session it ends
 * where the store holds it in the clear (the memory store): each at the
 * provider that signed it in, and so, for `a`'s sessions of IdP A after a
 * reload gave `a` IdP B's issuer, at none.
 */
t.test("log out everywhere sends IdP B none of IdP A's sessions' refresh tokens", async (t) => {
  const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
    input: (issuer) => ({ identityProviders: [{ name: 'a', issuer }] }),
  })
  const idpB = await secondIdp(t, stack)
  const atA = [await login(stack.url), await login(stack.url)]
  t.ok(await pointAt(stack, idpB.issuer), 'the reload applies')
  const everywhere = await apiCall(atA[0]!.jar, `${stack.url}/auth/logout-everywhere`, { method: 'POST' })
  t.same(everywhere.json(), { ended: 2 }, 'both her sessions of IdP A end')
  t.same(seenBy(idpB), { tokenRequests: 0, revocations: 0 }, 'IdP B is sent neither refresh token')
  t.equal(stack.idp.stats.revocations, 0, 'nor is IdP A, which no provider names now')
})
