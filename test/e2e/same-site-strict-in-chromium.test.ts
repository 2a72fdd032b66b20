import t from 'tap'
import { startEchoUpstream } from '../../dev/upstream.js'
import { gatewayOnAnotherSiteThanIdp, launchChromium, signInInChromium } from '../helpers/chromium.js'
import { route, testConfig } from '../helpers/gateway.js'

t.test(
  'session.sameSite: strict in Chromium: the page the login lands on already has the session',
  async (t) => {
    const upstream = await startEchoUpstream()
    t.teardown(() => upstream.close())
    const { base } = await gatewayOnAnotherSiteThanIdp(t, (base, issuer, port) =>
      testConfig({
        port,
        publicUrl: base,
        issuer,
        sameSite: 'strict',
        // A page the server renders for the signed-in user: it needs the
        // session on the navigation itself, not only on the SPA's fetches.
        routes: [route('/', upstream.url, { token: 'optional-user', csrf: false })],
      }),
    )

    const browser = await launchChromium(t)
    const context = await browser.newContext()
    const page = await context.newPage()

    await signInInChromium(page, base, '/welcome')

    const cookies = await context.cookies(base)
    const session = cookies.find((c) => c.name === 'gatehouse')
    t.equal(session?.sameSite, 'Strict', 'the session cookie is SameSite=Strict')
    const landed = JSON.parse((await page.textContent('body')) ?? '{}') as { token?: { present?: boolean } }
    t.equal(
      landed.token?.present,
      true,
      'the landing navigation carried the session: the upstream got the token',
    )
    const reloaded = await page.reload()
    t.equal((await reloaded?.json())?.token?.present, true, 'and so does every navigation this site starts')
  },
)
