/**
 * A page on a sibling subdomain rode a `csrf: false` route whose upstream
 * gets the session's token. `csrf: false` is for navigations, which cannot
 * carry the anti-forgery header (a page the server renders for the
 * signed-in user, `token: optional-user`), but it turned every check off:
 * evil.example.com is the same site as app.example.com, so Chromium sends
 * the `SameSite=Lax` session cookie with its form POSTs, its `fetch` and
 * its images, and the upstream acted on them with the user's token; an
 * upstream that allowed the sibling's origin with credentials (CORS) let it
 * read the user's data too. Such a route now takes from another origin only
 * what `SameSite=Lax` takes from another site: a navigation with GET.
 */
import type { IncomingMessage } from 'node:http'
import t, { type Test } from 'tap'
import { buildTestApp, seedSession } from '../helpers/app.js'
import { launchChromium, signInInChromium } from '../helpers/chromium.js'
import { route } from '../helpers/gateway.js'
import { serveHttp } from '../helpers/http-server.js'
import { gatewayOverHttps, pagesElsewhere } from '../helpers/https-sites.js'

/** example.com is a registrable domain: evil.example.com is the same site as the app, another origin. */
const APP = 'app.example.com'
const SIBLING = 'evil.example.com'
const OTHER_SITE = 'attacker.test'

interface Seen {
  readonly method: string
  readonly path: string
  readonly token: boolean
}

/**
 * An upstream as careless as they come: it allows any origin with
 * credentials (CORS), and records what it was asked and whether with a token.
 */
async function carelessUpstream(t: Test) {
  const seen: Seen[] = []
  const url = await serveHttp(t, (request: IncomingMessage, response) => {
    request.resume()
    request.on('end', () => {
      const token = request.headers.authorization !== undefined
      seen.push({ method: request.method!, path: request.url!, token })
      const origin = request.headers.origin
      response.writeHead(200, {
        'content-type': 'application/json',
        ...(origin
          ? {
              'access-control-allow-origin': origin,
              'access-control-allow-credentials': 'true',
              'access-control-allow-methods': 'GET, POST, PUT, DELETE',
              'access-control-allow-headers': request.headers['access-control-request-headers'] ?? '',
            }
          : {}),
      })
      response.end(JSON.stringify({ account: 'alice', token }))
    })
  })
  return { url, seen, at: (path: string) => seen.filter((s) => s.path.startsWith(path)) }
}

t.test(
  "in Chromium, a sibling subdomain's forms, fetches and images never reach a csrf: false route's upstream with the user's token; links from it and from other sites still do",
  async (t) => {
    const upstream = await carelessUpstream(t)
    const { base } = await gatewayOverHttps(t, APP, [
      // Pages the server renders for the signed-in user, and a download link.
      route('/account', upstream.url, { token: 'optional-user', csrf: false }),
      route('/export', upstream.url, { token: 'user', csrf: false }),
    ])

    const [sibling, otherSite] = await pagesElsewhere(t, [SIBLING, OTHER_SITE])
    const browser = await launchChromium(t, [
      '--ignore-certificate-errors',
      `--host-resolver-rules=${[APP, SIBLING, OTHER_SITE].map((host) => `MAP ${host} 127.0.0.1`).join(', ')}`,
    ])
    const context = await browser.newContext({ ignoreHTTPSErrors: true })
    const page = await context.newPage()
    await signInInChromium(page, base, '/account/home')
    t.match(
      upstream.at('/account/home'),
      [{ method: 'GET', token: true }],
      'signed in: the landing page had the token',
    )

    await page.goto(`${sibling}/`)
    /** A top-level form POST from the page now open; the text of the page it lands on. */
    const postForm = async (action: string, enctype: string) => {
      await Promise.all([
        page.waitForURL(action),
        page.evaluate(
          ([action, enctype]) => {
            const form = document.createElement('form')
            form.method = 'POST'
            form.action = action!
            form.enctype = enctype!
            const field = document.createElement('input')
            field.name = 'amount'
            field.value = '1000'
            form.append(field)
            document.body.append(form)
            form.submit()
          },
          [action, enctype],
        ),
      ])
      return (await page.textContent('body')) ?? ''
    }
    for (const enctype of ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']) {
      await page.goto(`${sibling}/`)
      const landed = await postForm(`${base}/account/transfer`, enctype)
      t.match(JSON.parse(landed), { error: 'cross_site_request' }, `a form POST (${enctype}) is refused`)
    }
    await page.goto(`${sibling}/`)
    const fromScript = await page.evaluate(async (base) => {
      const posted = await fetch(`${base}/export/erase`, {
        method: 'POST',
        mode: 'no-cors',
        credentials: 'include',
      })
      const read = await fetch(`${base}/export/data`, { credentials: 'include' }).then(
        async (r) => `read ${await r.text()}`,
        () => 'refused',
      )
      const put = await fetch(`${base}/account/email`, {
        method: 'PUT',
        credentials: 'include',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      }).then(
        async (r) => `read ${await r.text()}`,
        () => 'refused',
      )
      const image = await new Promise((resolve) => {
        const img = document.createElement('img')
        img.onload = img.onerror = () => resolve('done')
        img.src = `${base}/export/pixel`
        document.body.append(img)
      })
      return { posted: posted.type, read, put, image }
    }, base)
    t.same(
      { read: fromScript.read, put: fromScript.put },
      { read: 'refused', put: 'refused' },
      "the sibling reads nothing, whatever the upstream's CORS allows",
    )
    t.same(
      upstream.seen.filter((s) => /\/(transfer|erase|data|email|pixel)/.test(s.path)),
      [],
      "no form, fetch, preflight or image of the sibling's reached the upstream",
    )

    // The controls: links still work, from the sibling and from another site, with the session.
    for (const [from, path] of [
      [sibling!, '/account/from-sibling'],
      [otherSite!, '/account/from-elsewhere'],
    ] as const) {
      await page.goto(`${from}/`)
      await Promise.all([
        page.waitForURL(`${base}${path}`),
        page.evaluate((href) => {
          location.href = href
        }, `${base}${path}`),
      ])
      t.match(upstream.at(path), [{ method: 'GET', token: true }], `a link from ${from} lands signed in`)
    }
    // And the app's own forms post with the token.
    const ownPost = JSON.parse(await postForm(`${base}/account/save`, 'application/x-www-form-urlencoded'))
    t.same(ownPost, { account: 'alice', token: true }, "the app's own form POST is served with the token")
    t.match(upstream.at('/account/save'), [{ method: 'POST', token: true }], 'and reached the upstream once')
  },
)

t.test(
  'a csrf: false route that carries the session takes from other origins only navigations with GET',
  async (t) => {
    const seen: string[] = []
    const upstream = await serveHttp(t, (request, response) => {
      seen.push(`${request.method} ${request.url}`)
      response.end('{}')
    })
    const app = await buildTestApp(t, {
      publicUrl: 'https://app.example.com',
      routes: [
        route('/account', upstream, { token: 'optional-user', csrf: false }),
        route('/export', upstream, { token: 'user', csrf: false }),
        route('/public', upstream, { token: 'none', csrf: false }),
      ],
    })
    const { cookie } = await seedSession(app)
    const call = (method: string, url: string, headers: Record<string, string>) =>
      app.inject({ method: method as 'GET', url, headers: { cookie, ...headers } })
    const navigate = { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }

    for (const path of ['/account/x', '/export/x']) {
      for (const [label, method, headers] of [
        [
          'a sibling form POST',
          'POST',
          { ...navigate, 'sec-fetch-site': 'same-site', origin: 'https://evil.example.com' },
        ],
        [
          'a form POST from another site',
          'POST',
          { ...navigate, 'sec-fetch-site': 'cross-site', origin: 'https://evil.test' },
        ],
        [
          'a no-cors fetch from a sibling',
          'GET',
          { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'empty' },
        ],
        [
          'an image from a sibling',
          'GET',
          { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' },
        ],
        [
          'a CORS preflight',
          'OPTIONS',
          { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'cors', origin: 'https://evil.example.com' },
        ],
        [
          'a navigation into <embed>',
          'GET',
          { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'embed' },
        ],
        // Without fetch metadata (older browsers) a foreign Origin still tells.
        ['a POST with a foreign Origin only', 'POST', { origin: 'https://evil.example.com' }],
        ['a POST with Origin: null', 'POST', { origin: 'null' }],
      ] as const) {
        const answer = await call(method, path, headers)
        t.equal(answer.statusCode, 403, `${path}: ${label}`)
        t.equal(answer.json().error, 'cross_site_request', `${path}: ${label}`)
      }
    }
    t.same(seen, [], 'nothing refused reached the upstream')

    for (const [label, method, headers] of [
      ['a link from a sibling', 'GET', { ...navigate, 'sec-fetch-site': 'same-site' }],
      ['a link from another site', 'GET', { ...navigate, 'sec-fetch-site': 'cross-site' }],
      [
        'a framed page of a sibling',
        'GET',
        { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' },
      ],
      ['a typed address', 'GET', { ...navigate, 'sec-fetch-site': 'none' }],
      [
        "the app's own form POST",
        'POST',
        { ...navigate, 'sec-fetch-site': 'same-origin', origin: 'https://app.example.com' },
      ],
      [
        "the app's own fetch",
        'DELETE',
        { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors', origin: 'https://app.example.com' },
      ],
      ['a client without fetch metadata or Origin', 'PUT', {}],
    ] as const) {
      t.equal((await call(method, '/export/x', headers)).statusCode, 200, label)
    }
    // A route that sends nothing of the session is anyone's to call.
    const anonymous = await call('POST', '/public/x', {
      'sec-fetch-site': 'cross-site',
      origin: 'https://evil.test',
    })
    t.equal(anonymous.statusCode, 200, 'token: none with csrf: false takes a cross-site POST')
  },
)
