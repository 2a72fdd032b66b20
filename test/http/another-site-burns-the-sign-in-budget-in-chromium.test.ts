/**
 * Any site could lock a browser's address out of signing in. Login and
 * callback are rate limited per client address (`auth.rateLimit`), and a
 * page of another site, an advert or an image in a forum post, had the
 * visitor's browser spend that budget with images, `fetch` or hidden
 * frames: the visitor, and everyone behind the same NAT, then got 429 at
 * sign-in for as long as the page stayed open. Both endpoints are a
 * navigation's; what is not one, and a frame of another site at
 * `/auth/login` (where no sign-in can complete: the `SameSite=Lax` cookies
 * would not come), is now refused before it counts. The callback takes
 * frames (a silent sign-in comes back in one), so another site's frames,
 * or a popup it sent there again and again, spent its budget until the
 * visitor's return from the IdP answered 429; a callback another site
 * started that carries no sign-in cookie for its `state` is now refused
 * before it counts too.
 */
import t, { type Test } from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { gatewayOnAnotherSiteThanIdp, launchChromium, signInInChromium } from '../helpers/chromium.js'
import { route, testConfig } from '../helpers/gateway.js'
import { serveHttp } from '../helpers/http-server.js'

const BUDGET = 4

/**
 * A gateway with a budget of BUDGET sign-ins and a home page, and a page of
 * another site holding `body`: 127.0.0.1 is another site than localhost.
 */
async function gatewayAndAnotherSite(t: Test, body: string) {
  const upstream = await serveHttp(t, (_request, response) => response.end('home'))
  const { base } = await gatewayOnAnotherSiteThanIdp(t, (base, issuer, port) =>
    testConfig({
      port,
      publicUrl: base,
      issuer,
      rateLimitMax: BUDGET,
      routes: [route('/', upstream, { token: 'none', csrf: false })],
    }),
  )
  const elsewhere = await serveHttp(t, (_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html' })
    response.end(`<!doctype html><title>elsewhere</title><body>${body}</body>`)
  })
  return { base, elsewhere }
}

t.test(
  "in Chromium, another site's images, fetches and frames do not spend the visitor's sign-in budget",
  async (t) => {
    const { base, elsewhere } = await gatewayAndAnotherSite(t, '')
    const browser = await launchChromium(t)
    const page = await (await browser.newContext()).newPage()
    await page.goto(`${elsewhere}/`)
    const spent = await page.evaluate(
      async ([base, budget]) => {
        const paths = ['/auth/login?returnTo=/x', '/auth/callback?state=s&code=c']
        const loaded = (element: HTMLImageElement | HTMLIFrameElement) =>
          new Promise((resolve) => {
            element.onload = element.onerror = () => resolve(element.tagName)
            document.body.append(element)
          })
        const all: Promise<unknown>[] = []
        for (let i = 0; i <= Number(budget); i++) {
          for (const path of paths) {
            all.push(
              fetch(`${base}${path}`, { mode: 'no-cors', credentials: 'include' }).catch(() => 'refused'),
            )
            const image = document.createElement('img')
            image.src = `${base}${path}&i=${i}`
            all.push(loaded(image))
          }
          const frame = document.createElement('iframe')
          frame.src = `${base}/auth/login?returnTo=/frame${i}`
          all.push(loaded(frame))
        }
        return (await Promise.all(all)).length
      },
      [base, String(BUDGET)] as const,
    )
    t.equal(spent, (BUDGET + 1) * 5, 'every request of the other site ran its course')

    // The visitor now follows a link to sign in, from that same site.
    const [login] = await Promise.all([
      page.waitForResponse((response) => response.url().startsWith(`${base}/auth/login`)),
      page.evaluate((href) => {
        location.href = href
      }, `${base}/auth/login?returnTo=/`),
    ])
    t.equal(login.status(), 302, 'the sign-in is sent to the IdP, not refused with 429')
    await page.locator('input[name="login"]').waitFor()
    t.pass('the IdP asks the visitor to sign in')
  },
)

t.test(
  "in Chromium, another site's frames and popup at the callback do not spend the budget of the visitor's return from the IdP",
  async (t) => {
    const { base, elsewhere } = await gatewayAndAnotherSite(t, '<button>win</button>')
    const browser = await launchChromium(t)
    const context = await browser.newContext()
    const page = await context.newPage()
    const refused: number[] = []
    context.on('response', (response) => {
      if (response.url().includes('/auth/callback?state=s')) refused.push(response.status())
    })
    await page.goto(`${elsewhere}/`)
    // Hidden frames: the callback takes frames, as a silent sign-in's comes
    // back in one, and fetch metadata calls that cross-site too.
    await page.evaluate(
      async ([base, budget]) => {
        const loads: Promise<unknown>[] = []
        for (let i = 0; i <= Number(budget); i++) {
          const frame = document.createElement('iframe')
          frame.src = `${base}/auth/callback?state=s&code=c&frame=${i}`
          loads.push(
            new Promise((resolve) => {
              frame.onload = resolve
            }),
          )
          document.body.append(frame)
        }
        await Promise.all(loads)
      },
      [base, String(BUDGET)] as const,
    )
    // One click opens a popup, which its opener may then send anywhere, as often as it likes.
    await page.evaluate(() => {
      document.querySelector('button')!.onclick = () => {
        ;(window as unknown as { popup: Window | null }).popup = window.open('about:blank')
      }
    })
    const [popup] = await Promise.all([context.waitForEvent('page'), page.click('button')])
    // Each navigation ends (its page loaded) before the opener starts the
    // next: one started while the last was still committing (the first,
    // from about:blank to another site, swaps the popup's process) was at
    // times dropped, and its response never came.
    await popup.waitForLoadState()
    for (let i = 0; i <= BUDGET; i++) {
      const href = `${base}/auth/callback?state=s&code=c&popup=${i}`
      await Promise.all([
        popup.waitForResponse((response) => response.url() === href),
        popup.waitForURL(href),
        page.evaluate((href) => {
          ;(window as unknown as { popup: Window }).popup.location.href = href
        }, href),
      ])
    }
    t.same(
      refused,
      Array.from({ length: 2 * (BUDGET + 1) }, () => 400),
      "each of the other site's callbacks is refused as the sign-in it names is none of the browser's, none with 429",
    )

    // The visitor signs in; the IdP sends them back to the callback.
    const user = await context.newPage()
    const [callback] = await Promise.all([
      user.waitForResponse((response) => response.url().startsWith(`${base}/auth/callback`)),
      signInInChromium(user, base, '/'),
    ])
    t.equal(callback.status(), 302, "the visitor's own return is served, not refused with 429")
    t.equal(await user.textContent('body'), 'home', 'and lands signed in where it was going')
  },
)

t.test(
  'login and callback refuse what is not a navigation before it counts against the budget',
  async (t) => {
    const app = await buildTestApp(t, { rateLimitMax: BUDGET, publicUrl: 'http://localhost:3000' })
    const call = (url: string, headers: Record<string, string>) => app.inject({ method: 'GET', url, headers })
    const login = '/auth/login'
    const callback = '/auth/callback?state=s&code=c'
    for (let i = 0; i <= BUDGET; i++) {
      for (const [label, url, headers] of [
        [
          'an image of another site',
          login,
          { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' },
        ],
        [
          'a fetch of another site',
          callback,
          { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors', origin: 'http://evil.test' },
        ],
        [
          'a frame of another site',
          login,
          { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' },
        ],
        [
          "a sibling subdomain's fetch",
          login,
          { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' },
        ],
        [
          "another site's prefetch",
          callback,
          { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'empty' },
        ],
      ] as const) {
        const answer = await call(url, headers)
        t.equal(answer.statusCode, 403, `${label} (${i + 1})`)
        t.match(answer.headers['content-type'], /^text\/html/, 'a page, as every answer of these routes')
      }
    }
    const navigate = { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }
    // No IdP behind this app: a login that passes the checks answers 503
    // (discovery), a callback 400 (no sign-in cookie: one started elsewhere
    // is refused before it counts, one of this origin after).
    for (const [label, url, headers, status] of [
      ['a link from another site', login, { ...navigate, 'sec-fetch-site': 'cross-site' }, 503],
      ["the IdP's redirect to the callback", callback, { ...navigate, 'sec-fetch-site': 'cross-site' }, 400],
      [
        "the IdP's redirect into the app's own frame",
        callback,
        { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' },
        400,
      ],
    ] as const) {
      t.equal((await call(url, headers)).statusCode, status, `${label} passes the navigation check`)
    }
    t.equal(
      (
        await call(login, {
          'sec-fetch-site': 'same-origin',
          'sec-fetch-mode': 'navigate',
          'sec-fetch-dest': 'iframe',
        })
      ).statusCode,
      503,
      "a frame of the app's own (silent sign-in)",
    )
    // Two sign-ins served so far: the link and the frame. Node's fetch sends
    // Sec-Fetch-Mode: cors and no Sec-Fetch-Site: not a browser's metadata.
    t.equal((await call(login, { 'sec-fetch-mode': 'cors' })).statusCode, 503, "Node's fetch is served")
    for (let served = 3; served < BUDGET; served++)
      t.equal((await call(login, {})).statusCode, 503, 'a client without fetch metadata is served')
    t.equal((await call(login, {})).statusCode, 429, 'and the budget, spent only by what was served, ends')
  },
)
