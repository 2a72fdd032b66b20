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
import t from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { startEchoUpstream } from '../../dev/upstream.js'
import { launchChromium, signInInChromium } from '../helpers/chromium.js'
import { CLIENT_ID, CLIENT_SECRET, route, startGateway, testConfig } from '../helpers/gateway.js'
import { onFreePort } from '../helpers/ports.js'

t.test(
  'session.sameSite: strict in Chromium: a refused second sign-in leaves the live session working',
  async (t) => {
    // Userinfo answering for another user (OIDC Core §5.3.2) is refused after the code exchange.
    let answerForAnother = false
    const upstream = await startEchoUpstream()
    t.teardown(() => upstream.close())
    const { base, idp, gateway } = await onFreePort(async (port) => {
      // Two sites, as in production: the IdP's redirect to the callback is cross-site.
      const base = `http://localhost:${port}`
      const idp = await startDevIdp({
        userinfoSubject: (sub) => (answerForAnother ? 'mallory' : sub),
        clients: [
          { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`${base}/auth/callback`] },
        ],
      })
      try {
        const gateway = await startGateway(
          testConfig({
            port,
            publicUrl: base,
            issuer: idp.issuer,
            sameSite: 'strict',
            oidc: { userinfo: true },
            // Its first request redeems the session's refresh token for a token of its own.
            routes: [
              route('/api/scoped', upstream.url, { scopes: ['openid', 'offline_access'] }),
              route('/', upstream.url, { token: 'optional-user', csrf: false }),
            ],
          }),
        )
        return { base, idp, gateway }
      } catch (err) {
        await idp.close()
        throw err
      }
    })
    t.teardown(() => idp.close())
    t.teardown(() => gateway.close())

    const browser = await launchChromium(t)
    const page = await (await browser.newContext()).newPage()
    await signInInChromium(page, base, '/welcome')

    answerForAnother = true
    await page.goto(`${base}/auth/login?returnTo=${encodeURIComponent('/again')}`)
    // The IdP knows the browser: it asks only for consent again.
    await page.locator('input[name="prompt"][value="consent"]').waitFor({ state: 'attached' })
    const [refused] = await Promise.all([
      page.waitForResponse((response) => response.url().startsWith(`${base}/auth/callback`)),
      page.click('button[type="submit"]'),
    ])
    t.equal(refused.status(), 400, 'the second sign-in is refused')
    t.equal(idp.stats.revokedGrants, 0, 'the grant the browser’s session holds is not revoked')

    answerForAnother = false
    await page.goto(`${base}/`)
    const after = await page.evaluate(async () => {
      const response = await fetch('/api/scoped', { headers: { 'x-csrf': '1' } })
      return { status: response.status, body: await response.text() }
    })
    t.equal(after.status, 200, 'and the session still refreshes', { body: after.body })
  },
)
