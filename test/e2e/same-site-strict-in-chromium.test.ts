import t from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { startEchoUpstream } from '../../dev/upstream.js'
import { launchChromium, signInInChromium } from '../helpers/chromium.js'
import { CLIENT_ID, CLIENT_SECRET, route, startGateway, testConfig } from '../helpers/gateway.js'
import { onFreePort } from '../helpers/ports.js'

t.test(
  'session.sameSite: strict in Chromium: the page the login lands on already has the session',
  async (t) => {
    const upstream = await startEchoUpstream()
    t.teardown(() => upstream.close())
    // The IdP must know the callback's port before the gateway listens on
    // it; onFreePort picks again if another process takes it first.
    const { base, idp, gateway } = await onFreePort(async (port) => {
      // The gateway on `localhost`, the IdP on `127.0.0.1`: two sites, as in
      // production, so the IdP's redirect to the callback is cross-site.
      const base = `http://localhost:${port}`
      const idp = await startDevIdp({
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
            // A page the server renders for the signed-in user: it needs the
            // session on the navigation itself, not only on the SPA's fetches.
            routes: [route('/', upstream.url, { token: 'optional-user', csrf: false })],
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
