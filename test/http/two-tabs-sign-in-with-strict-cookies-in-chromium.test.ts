/**
 * With `session.sameSite: strict`, two tabs sent to sign in at once (a
 * session ended with several open) left an orphan: the IdP's redirect to
 * each callback is cross-site, so the second callback came without the
 * strict cookie the first had just set, and its login had started before
 * there was any session to note. It made its session and its cookie
 * replaced the first's, whose record, live refresh token and all, ran on
 * in the store, named by no cookie, until its idle expiry. A callback now
 * notes the session it made in the browser's other sign-ins in progress
 * (their login cookies are `Lax`, and come with it), so the next callback
 * ends that session as the one its browser held, and revokes its grant
 * when the winner's cannot be the same.
 */
import type { Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { startEchoUpstream } from '../../dev/upstream.js'
import { gatewayOnAnotherSiteThanIdp, launchChromium } from '../helpers/chromium.js'
import { route, testConfig } from '../helpers/gateway.js'

/** A strict-cookie gateway and two tabs of one browser, each at the IdP's sign-in form of its own sign-in. */
async function twoTabsAtTheIdp(t: Test) {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const { base, idp, gateway } = await gatewayOnAnotherSiteThanIdp(t, (base, issuer, port) =>
    testConfig({
      port,
      publicUrl: base,
      issuer,
      sameSite: 'strict',
      // Its first request redeems the session's refresh token for a token of its own.
      routes: [
        route('/api/scoped', upstream.url, { scopes: ['openid', 'offline_access'] }),
        route('/', upstream.url, { token: 'optional-user', csrf: false }),
      ],
    }),
  )
  const browser = await launchChromium(t)
  const context = await browser.newContext()
  const open = async (returnTo: string) => {
    const page = await context.newPage()
    // As a SPA's 401 handler does in each tab when the session has ended.
    await page.goto(`${base}/auth/login?returnTo=${encodeURIComponent(returnTo)}`)
    await page.locator('input[name="login"]').waitFor()
    return page
  }
  const tabA = await open('/a')
  const tabB = await open('/b')
  /** Signs `user` in at the tab's form and consents; done once the tab has landed on `returnTo`. */
  const finish = async (page: Page, user: string, returnTo: string) => {
    await page.fill('input[name="login"]', user)
    await page.fill('input[name="password"]', 'any')
    await page.click('button[type="submit"]')
    await page.locator('input[name="prompt"][value="consent"]').waitFor({ state: 'attached' })
    await Promise.all([page.waitForURL(`${base}${returnTo}`), page.click('button[type="submit"]')])
  }
  /** What the tab's SPA sees: its user, and a call that redeems the session's refresh token. */
  const seen = (page: Page) =>
    page.evaluate(async () => {
      const user = await fetch('/auth/user', { headers: { 'x-csrf': '1' } })
      const scoped = await fetch('/api/scoped', { headers: { 'x-csrf': '1' } })
      return { sub: user.ok ? (await user.json()).sub : user.status, scoped: scoped.status }
    })
  return { idp, store: gateway.app.gatehouse.stores.sessions, tabA, tabB, finish, seen }
}

t.test('session.sameSite: strict in Chromium: two tabs signing in at once leave one session', async (t) => {
  const { idp, store, tabA, tabB, finish, seen } = await twoTabsAtTheIdp(t)
  await finish(tabA, 'alice', '/a')
  t.equal((await store.idsBySub('alice')).length, 1, 'the first tab’s sign-in makes a session')
  await finish(tabB, 'alice', '/b')
  t.equal((await store.idsBySub('alice')).length, 1, 'the second’s replaces it: no session is left unnamed')
  t.equal(idp.stats.revokedGrants, 0, 'the grant both continued is not revoked')
  for (const tab of [tabA, tabB])
    t.same(await seen(tab), { sub: 'alice', scoped: 200 }, 'each tab is signed in, and the session refreshes')
})

t.test(
  'session.sameSite: strict in Chromium: two tabs signing in as two users leave the last one’s session',
  async (t) => {
    const { idp, store, tabA, tabB, finish, seen } = await twoTabsAtTheIdp(t)
    await finish(tabA, 'alice', '/a')
    await finish(tabB, 'bob', '/b')
    t.same(await store.idsBySub('alice'), [], 'alice’s session is gone')
    t.equal(idp.stats.revokedGrants, 1, 'and her grant, which bob’s session cannot hold, is revoked')
    for (const tab of [tabA, tabB]) t.same(await seen(tab), { sub: 'bob', scoped: 200 }, 'bob is signed in')
  },
)
