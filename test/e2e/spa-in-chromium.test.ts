import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Response } from 'playwright-core'
import t from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { startStaticServer } from '../../dev/static.js'
import { startEchoUpstream } from '../../dev/upstream.js'
import { start } from '../../src/server/start.js'
import { launchChromium } from '../helpers/chromium.js'
import { CLIENT_ID, CLIENT_SECRET, route, TestClock, testConfig } from '../helpers/gateway.js'
import { onFreePorts } from '../helpers/ports.js'

const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url))

t.test(
  'the demo SPA in real Chromium: login, API calls across a refresh, 50 calls and 1 refresh, logout; no token ever reaches the page',
  async (t) => {
    mkdirSync(artifacts, { recursive: true })
    const clock = new TestClock()
    const upstream = await startEchoUpstream({ describeToken: (token) => idp.describe(token) })
    t.teardown(() => upstream.close())
    const frontend = await startStaticServer(fileURLToPath(new URL('../../demo/public/', import.meta.url)))
    t.teardown(() => frontend.close())
    // The IdP must know the gateway's redirect URI, and the demo config
    // routes /demo/metrics to the metrics listener (so the burst panel can
    // read the gateway's own counters): both ports are chosen first, and
    // onFreePorts picks again if one is taken before its listen.
    const { idp, base, gateway } = await onFreePorts(2, async ([port, metricsPort]) => {
      const base = `http://127.0.0.1:${port}`
      const idp = await startDevIdp({
        accessTokenTtl: 60,
        // The logout posts the ID token to the IdP (auth.endSession: post).
        endSessionPost: true,
        clients: [
          {
            clientId: CLIENT_ID,
            clientSecret: CLIENT_SECRET,
            redirectUris: [`${base}/auth/callback`],
            postLogoutRedirectUris: [`${base}/`],
          },
        ],
      })
      const config = {
        ...testConfig({
          port: port!,
          issuer: idp.issuer,
          routes: [
            route('/api/orders', upstream.url),
            route('/api/reports', upstream.url, { token: 'client', scopes: ['reports.read'] }),
            route('/demo/metrics', `http://127.0.0.1:${metricsPort}`, {
              token: 'none',
              rewritePath: '/metrics',
            }),
            route('/', frontend.url, { token: 'none', csrf: false }),
          ],
        }),
        metrics: { enabled: true, host: '127.0.0.1', port: metricsPort! },
      }
      // start(), as the demo runs it: the gateway and its metrics listener.
      try {
        const gateway = await start(config, { now: clock.now, handleSignals: false })
        return { idp, base, gateway }
      } catch (err) {
        await idp.close()
        throw err
      }
    })
    t.teardown(() => idp.close())
    t.teardown(() => gateway.close())
    await gateway.app.gatehouse.whenDiscovered()

    const browser = await launchChromium(t, ['--disable-component-update', '--disable-sync'])
    const page = await browser.newPage()
    const bodies: string[] = []
    page.on('response', (response: Response) => {
      bodies.push(`${response.url()}\n${JSON.stringify(response.headers())}`)
      response.text().then(
        (text) => bodies.push(text),
        () => {},
      )
    })
    const requests: { method: string; url: string; body: string }[] = []
    page.on('request', (request) =>
      requests.push({ method: request.method(), url: request.url(), body: request.postData() ?? '' }),
    )
    const violations: string[] = []
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text())
    })
    let step = 0
    const shot = (name: string) =>
      page.screenshot({ path: `${artifacts}${String(++step).padStart(2, '0')}-${name}.png`, fullPage: true })
    const rows = () => page.locator('#calls tbody tr')

    await page.goto(base)
    await page.locator('#signed-out').waitFor()
    await shot('signed-out')

    await page.click('#login')
    await page.locator('input[name="login"]').waitFor()
    await shot('idp-login-form')
    await page.fill('input[name="login"]', 'alice')
    await page.fill('input[name="password"]', 'any')
    await page.click('button[type="submit"]')
    // The strict IdP asks for consent (prompt=consent, OIDC Core §11); the user allows.
    await page.locator('input[name="prompt"][value="consent"]').waitFor({ state: 'attached' })
    await shot('idp-consent')
    await Promise.all([page.waitForURL(`${base}/`), page.click('button[type="submit"]')])
    await page.locator('#signed-in').waitFor()
    t.match(await page.textContent('#who'), /Alice \(alice\)/, 'the SPA shows who is signed in')
    t.ok(await page.textContent('#session-ends'), 'and when the session ends')
    await shot('signed-in')

    await page.click('#call-user')
    await page.locator('#calls tbody tr[data-status="200"]').first().waitFor()
    t.match(await rows().first().textContent(), /sub alice/, 'the upstream saw the user token')
    await shot('user-call')

    idp.resetStats()
    clock.advance(61_000)
    await page.click('#call-user')
    await page.locator('#calls tbody tr[data-status="200"]').nth(1).waitFor()
    t.equal(idp.stats.refreshGrants, 1, 'the second call went through a refresh')
    const seenTokens = await page.locator('#calls tbody tr td:nth-child(4)').allTextContents()
    t.not(seenTokens[0], seenTokens[1], 'the page shows the upstream saw a new token after the refresh')
    await shot('after-refresh')

    await page.click('#call-client')
    await page.locator('#calls tbody tr[data-status="200"]').nth(2).waitFor()
    t.match(
      await rows().first().textContent(),
      /client gatehouse-test/,
      'the client route used a client-credentials token',
    )
    await shot('client-call')

    // The demo's headline: fifty calls on a token due for refresh, one refresh.
    // Until then its result labels stay hidden: a `display` rule must not undo `hidden`.
    t.equal(await page.locator('#burst').isVisible(), false, 'no empty burst labels before the burst')
    t.equal(await page.locator('#burst dt').first().isVisible(), false)
    idp.resetStats()
    clock.advance(61_000)
    await page.click('#fire')
    await page.locator('#burst[data-done="true"]').waitFor()
    t.equal(await page.locator('#burst').isVisible(), true, 'and shown once it has run')
    t.equal(await page.textContent('#burst-answered'), '50 of 50, all 200')
    t.equal(await page.textContent('#burst-calls'), '50', 'the page shows the gateway counted 50 calls')
    t.equal(await page.textContent('#burst-refreshes'), '1', 'and 1 refresh')
    t.equal(idp.stats.refreshGrants, 1, 'the IdP saw exactly one refresh')
    t.equal(idp.stats.refreshReplays, 0)
    t.match(await page.textContent('#burst-token'), /^[0-9a-f]{8}$/, 'every call carried the one new token')
    t.match(await page.textContent('#burst-expires'), /\d/, 'shown with its expiry')
    await shot('burst')

    t.equal(await page.evaluate(() => document.cookie), '', 'document.cookie shows nothing')
    const storage = await page.evaluate(
      () => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }),
    )
    t.equal(storage, '{}{}', 'localStorage and sessionStorage are empty')

    // The gateway's page posts the logout to the IdP by itself; the IdP then asks.
    await Promise.all([page.waitForURL(`${idp.issuer}/session/end`), page.click('#logout')])
    const confirm = page.locator('button[autofocus]')
    await confirm.waitFor()
    await shot('idp-logout')
    await Promise.all([page.waitForURL(`${base}/`), confirm.click()])
    await page.locator('#signed-out').waitFor()
    await shot('signed-out-again')
    const after = await page.evaluate(
      async () => (await fetch('/api/orders', { headers: { 'x-csrf': '1' } })).status,
    )
    t.equal(after, 401, 'the API answers 401 after logout')
    t.same(
      requests.filter((r) => r.url.includes('id_token_hint')).map((r) => r.url.split('?')[0]),
      [],
      'no URL the browser loaded carries the ID token',
    )
    const posted = requests.filter((r) => r.method === 'POST' && r.url === `${idp.issuer}/session/end`)
    t.equal(posted.length, 1, 'the logout page posted once to the end-session endpoint')
    t.match(posted[0]?.body, /(^|&)id_token_hint=ey/, 'with the ID token in its body')
    t.same(violations, [], "the page's own script ran under its CSP, and nothing else was tried")
    await page.click('#login')
    await page.locator('input[name="login"]').waitFor()
    t.pass('the IdP session ended: signing in again asks for credentials')

    const seen = bodies.join('\n')
    const tokens = new Set<string>()
    for (const r of upstream.requests) if (r.authorization) tokens.add(r.authorization.slice(7))
    t.ok(tokens.size >= 3, `${tokens.size} distinct tokens were forwarded upstream`)
    for (const token of tokens)
      t.notOk(seen.includes(token), `no response the page received contains token ${token.slice(0, 4)}…`)
  },
)
