/**
 * Cross-site WebSocket hijacking as Chromium makes it: a page on a sibling
 * subdomain (the same site, so Chromium sends the `SameSite=Lax` session
 * cookie with the handshake) and one on another site open a socket to the
 * app's WebSocket route. The other tests forge the handshake's headers;
 * this one checks what a real browser sends is refused, and that the app's
 * own page, whose `Origin` Chromium writes, opens the socket.
 */
import t from 'tap'
import { launchChromium, signInInChromium } from '../../helpers/chromium.js'
import { route } from '../../helpers/gateway.js'
import { serveHttp } from '../../helpers/http-server.js'
import { gatewayOverHttps, pagesElsewhere } from '../../helpers/https-sites.js'
import { wsUpstream } from '../../helpers/websocket.js'

const APP = 'app.example.com'
const SIBLING = 'evil.example.com'
const OTHER_SITE = 'attacker.test'

t.test(
  "in Chromium, a sibling subdomain's and another site's sockets never reach the upstream; the app's own opens",
  async (t) => {
    const sockets = await wsUpstream(t)
    // The app's page, from an upstream of its own.
    const pages = await serveHttp(t, (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/html' })
      response.end('<!doctype html><title>app</title><body></body>')
    })
    const { base } = await gatewayOverHttps(t, APP, [
      route('/live', sockets.url, { websocket: true }),
      // csrf: false spares navigations the header, never a socket its Origin check.
      route('/feed', sockets.url, { websocket: true, csrf: false }),
      route('/app', pages, { token: 'none', csrf: false }),
    ])
    const [sibling, otherSite] = await pagesElsewhere(t, [SIBLING, OTHER_SITE])
    const browser = await launchChromium(t, [
      '--ignore-certificate-errors',
      `--host-resolver-rules=${[APP, SIBLING, OTHER_SITE].map((host) => `MAP ${host} 127.0.0.1`).join(', ')}`,
    ])
    const context = await browser.newContext({ ignoreHTTPSErrors: true })
    const page = await context.newPage()
    await signInInChromium(page, base, '/app/home')

    /** Opens a socket to `url` from the page now open: its echo of one message, or how it closed. */
    const tryOpen = (url: string) =>
      page.evaluate(
        (url) =>
          new Promise<string>((resolve) => {
            const socket = new WebSocket(url)
            socket.onopen = () => socket.send('hello')
            socket.onmessage = (event) => {
              resolve(`echo ${event.data}`)
              socket.close()
            }
            socket.onclose = (event) => resolve(`closed ${event.code}`)
          }),
        url,
      )
    const wss = base.replace(/^https/, 'wss')
    for (const from of [sibling!, otherSite!]) {
      await page.goto(`${from}/`)
      for (const path of ['/live/x', '/feed/x'])
        t.equal(await tryOpen(`${wss}${path}`), 'closed 1006', `${path} from ${from}: refused`)
    }
    t.equal(sockets.upgrades.length, 0, 'no handshake of theirs reached the upstream')

    await page.goto(`${base}/app/home`)
    for (const path of ['/live/x', '/feed/x'])
      t.equal(await tryOpen(`${wss}${path}`), 'echo hello', `${path} from the app's own page opens`)
    t.equal(sockets.upgrades.length, 2)
    t.match(sockets.upgrades[0], { authorization: /^Bearer / }, "with the user's token")
  },
)
