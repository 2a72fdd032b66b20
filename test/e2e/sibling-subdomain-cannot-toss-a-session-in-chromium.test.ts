/**
 * Cookie tossing: evil.example.com is the same site as app.example.com and
 * may set cookies for all of example.com (`Domain=example.com`), which the
 * browser then sends to the app. Had the gateway read any of them as its
 * own, the sibling could sign a visitor in as Mallory (a session planted
 * under the session cookie's name), or finish Mallory's sign-in in the
 * visitor's browser (her pending sign-in's cookie planted, then her
 * callback link followed: login CSRF). Both names are `__Host-Http-`
 * prefixed on https, which no `Domain` cookie may take, and the gateway
 * reads each name exactly as configured, so the variants a browser does
 * store (another letter case, no prefix) are not its cookies, and a
 * nameless cookie whose value spells one of them is refused by Chromium.
 * Held when probed; this test keeps it so, in Chromium, over https.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { startEchoUpstream } from '../../dev/upstream.js'
import { launchChromium, signInInChromium } from '../helpers/chromium.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { gatewayOverHttps } from '../helpers/https-sites.js'
import { followLoginFlow, jarFetch } from '../helpers/login.js'
import { selfSigned } from '../helpers/tls-front.js'

const APP = 'app.example.com'
const SIBLING = 'evil.example.com'

/** The sibling's pages over https: each answer sets `tossed`, for the whole registrable domain. */
async function sibling(t: Test, tossed: () => readonly string[]) {
  const server = createServer(
    selfSigned([SIBLING]),
    (_request: IncomingMessage, response: ServerResponse) => {
      response.writeHead(200, { 'content-type': 'text/html', 'set-cookie': [...tossed()] })
      response.end('<!doctype html><title>sibling</title><body></body>')
    },
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return `https://${SIBLING}:${(server.address() as AddressInfo).port}`
}

/** Every spelling of `name=value` a sibling might try, each for all of example.com. */
function tossings(name: string, value: string): string[] {
  const domain = '; Domain=example.com; Path=/; Secure; HttpOnly; SameSite=Lax'
  const bare = name.replace(/^__Host-Http-/, '')
  return [
    `${name}=${value}${domain}`,
    `${name.toUpperCase().slice(0, 12)}${name.slice(12)}=${value}${domain}`,
    `${name.toLowerCase().slice(0, 12)}${name.slice(12)}=${value}${domain}`,
    ` ${name}=${value}${domain}`,
    `=${name}=${value}${domain}`,
    `__Host-${bare}=${value}${domain}`,
    `${bare}=${value}${domain}`,
  ]
}

t.test(
  "in Chromium, a sibling subdomain's cookies never sign a visitor in as another user, nor finish another user's sign-in",
  async (t) => {
    const upstream = await startEchoUpstream()
    t.teardown(() => upstream.close())
    const { base, port, gateway } = await gatewayOverHttps(t, APP, [route('/api', upstream.url)])
    const { cookieName } = gateway.app.gatehouse.config.session
    t.equal(cookieName, '__Host-Http-gatehouse', 'on https the session cookie is prefixed')

    // Mallory, at the gateway's own port (no browser, no TLS): a session of
    // hers, and a sign-in of hers stopped at the IdP's redirect back.
    const direct = `http://127.0.0.1:${port}`
    const viaGateway = (url: string) => `${direct}${new URL(url).pathname}${new URL(url).search}`
    const mallory = new CookieJar()
    const first = await jarFetch(mallory, `${direct}/auth/login?returnTo=/api/me`)
    const firstCallback = await followLoginFlow(mallory, first.location!, 'mallory')
    t.equal((await jarFetch(mallory, viaGateway(firstCallback))).status, 302, 'Mallory signed in')
    const malloryCookie = mallory.get(direct, cookieName)!
    const second = await jarFetch(mallory, `${direct}/auth/login?returnTo=/api/me`)
    const pendingCallback = await followLoginFlow(mallory, second.location!, 'mallory')
    const [pendingName, pendingValue] = (mallory.header(direct) ?? '')
      .split('; ')
      .map((pair) => pair.split('='))
      .find(([name]) => name!.startsWith(`${cookieName}-login.`))!
    t.ok(pendingValue, "Mallory's sign-in in progress has its cookie")

    let tossed: readonly string[] = []
    const siblingUrl = await sibling(t, () => tossed)
    const browser = await launchChromium(t, [
      '--ignore-certificate-errors',
      `--host-resolver-rules=${[APP, SIBLING].map((host) => `MAP ${host} 127.0.0.1`).join(', ')}`,
    ])
    const whoIs = async (page: Page) =>
      page.evaluate(async (base) => {
        const answer = await fetch(`${base}/auth/user`, { headers: { 'x-csrf': '1' } })
        return answer.status === 200 ? ((await answer.json()) as { sub: string }).sub : answer.status
      }, base)

    // A visitor not signed in: Mallory's session tossed under every spelling.
    const visitor = await browser.newContext({ ignoreHTTPSErrors: true })
    const visitorPage = await visitor.newPage()
    tossed = tossings(cookieName, malloryCookie)
    await visitorPage.goto(`${siblingUrl}/`)
    const stored = (await visitor.cookies(base)).map((c) => c.name)
    t.ok(stored.length > 0, `Chromium stored some of the tossed cookies for the app: ${stored.join(', ')}`)
    t.notOk(stored.includes(cookieName), 'none under the session cookie name')
    // A page of the app's origin (the route refuses a navigation without the anti-forgery header).
    await visitorPage.goto(`${base}/api/whoever`)
    t.equal(await whoIs(visitorPage), 401, 'the visitor is not signed in as Mallory')

    // Alice, signed in: the same tossing changes nothing, and neither does
    // Mallory's pending sign-in tossed before her callback link.
    const alice = await browser.newContext({ ignoreHTTPSErrors: true })
    const page = await alice.newPage()
    await signInInChromium(page, base, '/api/home')
    t.equal(await whoIs(page), 'alice', 'Alice is signed in')
    tossed = [...tossings(cookieName, malloryCookie), ...tossings(pendingName!, pendingValue!)]
    await page.goto(`${siblingUrl}/`)
    const aliceStored = (await alice.cookies(base)).map((c) => c.name)
    t.notOk(aliceStored.includes(pendingName!), "none under the name of Mallory's sign-in cookie")
    await page.goto(`${base}/api/home`)
    t.equal(await whoIs(page), 'alice', 'Alice is still Alice')
    const landed = await page.goto(pendingCallback)
    t.equal(landed?.status(), 400, "Mallory's callback link finds no sign-in of hers in Alice's browser")
    await page.goto(`${base}/api/home`)
    t.equal(await whoIs(page), 'alice', 'and Alice is still Alice')
  },
)
