/**
 * With `session.sameSite: strict`, a sign-in refused after the code
 * exchange in a browser that holds a session revoked its refresh token all
 * the same: the IdP's redirect to the callback is cross-site, so Chromium
 * does not send the strict session cookie there, and the callback took the
 * browser for one without a session. oidc-provider had continued the
 * session's grant, so revoking the token ended the session that still
 * worked (401 session_expired at its next refresh). Whether the browser
 * held a session is now noted at the login, which this site's navigations
 * reach with the cookie.
 */
import t, { type Test } from 'tap'
import { startEchoUpstream } from '../../dev/upstream.js'
import { gatewayOnAnotherSiteThanIdp, launchChromium, signInInChromium } from '../helpers/chromium.js'
import { route, testConfig } from '../helpers/gateway.js'

/** A gateway with `sameSite: strict` on one site and the dev IdP on another, and a signed-in Chromium page. */
async function strictSignedIn(t: Test) {
  // Userinfo answering for another user (OIDC Core §5.3.2) is refused after the code exchange.
  const userinfo = { forAnother: false }
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const { base, idp, gateway } = await gatewayOnAnotherSiteThanIdp(
    t,
    (base, issuer, port) =>
      testConfig({
        port,
        publicUrl: base,
        issuer,
        sameSite: 'strict',
        oidc: { userinfo: true },
        // Its first request redeems the session's refresh token for a token of its own.
        routes: [
          route('/api/scoped', upstream.url, { scopes: ['openid', 'offline_access'] }),
          route('/', upstream.url, { token: 'optional-user', csrf: false }),
        ],
      }),
    { userinfoSubject: (sub) => (userinfo.forAnother ? 'mallory' : sub) },
  )

  const browser = await launchChromium(t)
  const context = await browser.newContext()
  const page = await context.newPage()
  await signInInChromium(page, base, '/welcome')
  /** Signs in again from the app's own page, the IdP asking only for consent; the callback's answer. */
  const signInAgain = async () => {
    await page.goto(`${base}/auth/login?returnTo=${encodeURIComponent('/again')}`)
    await page.locator('input[name="prompt"][value="consent"]').waitFor({ state: 'attached' })
    const [callback] = await Promise.all([
      page.waitForResponse((response) => response.url().startsWith(`${base}/auth/callback`)),
      page.click('button[type="submit"]'),
    ])
    return callback
  }
  return { base, idp, gateway, context, page, userinfo, signInAgain }
}

t.test(
  'session.sameSite: strict in Chromium: a refused second sign-in leaves the live session working',
  async (t) => {
    const { base, idp, page, userinfo, signInAgain } = await strictSignedIn(t)
    userinfo.forAnother = true
    const refused = await signInAgain()
    t.equal(refused.status(), 400, 'the second sign-in is refused')
    t.equal(idp.stats.revokedGrants, 0, 'the grant the browser’s session holds is not revoked')

    userinfo.forAnother = false
    await page.goto(`${base}/`)
    const after = await page.evaluate(async () => {
      const response = await fetch('/api/scoped', { headers: { 'x-csrf': '1' } })
      return { status: response.status, body: await response.text() }
    })
    t.equal(after.status, 200, 'and the session still refreshes', { body: after.body })
  },
)

/**
 * The same cookie is missing at a sign-in that succeeds: the callback
 * could not end the session the browser held (session fixation's "the old
 * session deleted"), and its record, tokens and all, ran on in the store
 * until its idle expiry, though no cookie named it any longer.
 */
t.test('session.sameSite: strict in Chromium: a second sign-in ends the session it replaces', async (t) => {
  const { gateway, signInAgain } = await strictSignedIn(t)
  const store = gateway.app.gatehouse.stores.sessions
  t.equal((await store.idsBySub('alice')).length, 1, 'one session')
  const landed = await signInAgain()
  t.ok(landed.status() < 400, `the second sign-in completes (HTTP ${landed.status()})`)
  t.equal((await store.idsBySub('alice')).length, 1, 'and the session it replaces is gone')
})

/**
 * And the grant of the session it replaces, which no session will use
 * again, is revoked when the new session cannot share it: the callback
 * reads that session's record with the key its login noted, which a
 * `SameSite=Strict` cookie does not bring there. Until 2026-12-06 only
 * the record ended, and the grant of the user who left lived on at the IdP.
 */
t.test(
  'session.sameSite: strict in Chromium: a sign-in as another user revokes the grant of the session it replaces',
  async (t) => {
    const { base, idp, gateway, context, page } = await strictSignedIn(t)
    const store = gateway.app.gatehouse.stores.sessions
    // Signed out at the IdP (its cookies are on its own site), still signed in here.
    await context.clearCookies({ domain: new URL(idp.issuer).hostname })
    await signInInChromium(page, base, '/again', 'bob')
    t.equal(idp.stats.revokedGrants, 1, 'alice’s grant is revoked')
    t.same(await store.idsBySub('alice'), [], 'her session is gone')
    const after = await page.evaluate(async () => {
      const response = await fetch('/api/scoped', { headers: { 'x-csrf': '1' } })
      const user = await fetch('/auth/user', { headers: { 'x-csrf': '1' } })
      return { status: response.status, sub: (await user.json()).sub }
    })
    t.same(after, { status: 200, sub: 'bob' }, 'and bob’s session refreshes')
  },
)
