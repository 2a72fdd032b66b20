import type { Page } from 'playwright-core'
import t from 'tap'
import { launchChromium } from '../helpers/chromium.js'
import { route } from '../helpers/gateway.js'
import { startStack } from '../helpers/stack.js'

t.test(
  'two tabs sent to sign in at once in Chromium both land signed in, whichever finishes first',
  async (t) => {
    const stack = await startStack(t, {
      routes: (upstream) => [route('/app', upstream, { token: 'optional-user', csrf: false })],
    })
    const base = stack.gateway.url
    const browser = await launchChromium(t)
    const context = await browser.newContext()

    /** The status of each callback a tab's navigation reached. */
    const callbacks = new Map<Page, number[]>()
    const open = async (returnTo: string) => {
      const page = await context.newPage()
      callbacks.set(page, [])
      page.on('response', (response) => {
        if (new URL(response.url()).pathname === '/auth/callback')
          callbacks.get(page)!.push(response.status())
      })
      // As a SPA's 401 handler does when the session has ended.
      await page.goto(`${base}/auth/login?returnTo=${encodeURIComponent(returnTo)}`)
      await page.locator('input[name="login"]').waitFor()
      return page
    }
    /** Signs in at the IdP's form and consents; done once the tab is back on the gateway. */
    const finish = async (page: Page) => {
      await page.fill('input[name="login"]', 'alice')
      await page.fill('input[name="password"]', 'any')
      await page.click('button[type="submit"]')
      await page.locator('input[name="prompt"][value="consent"]').waitFor({ state: 'attached' })
      await Promise.all([page.waitForURL((url) => url.origin === base), page.click('button[type="submit"]')])
    }

    const tabA = await open('/app/a')
    const tabB = await open('/app/b')
    const pending = (await context.cookies(base)).filter((c) => c.name.startsWith('gatehouse-login.'))
    t.equal(pending.length, 2, 'each tab’s sign-in has its own cookie')

    await finish(tabA)
    t.same(callbacks.get(tabA), [302], 'the first tab’s callback completes')
    t.equal(tabA.url(), `${base}/app/a`)
    await finish(tabB)
    t.same(callbacks.get(tabB), [302], 'and so does the second’s')
    t.equal(tabB.url(), `${base}/app/b`)

    for (const tab of [tabA, tabB]) {
      const user = await tab.evaluate(async () => {
        const res = await fetch('/auth/user', { headers: { 'x-csrf': '1' } })
        return { status: res.status, sub: res.status === 200 ? (await res.json()).sub : undefined }
      })
      t.same(user, { status: 200, sub: 'alice' }, `signed in at ${new URL(tab.url()).pathname}`)
    }
    t.same(
      (await context.cookies(base)).filter((c) => c.name.startsWith('gatehouse-login')).map((c) => c.name),
      [],
      'no sign-in cookie is left',
    )
  },
)
