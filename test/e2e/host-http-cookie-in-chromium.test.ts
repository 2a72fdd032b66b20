import t from 'tap'
import { startEchoUpstream } from '../../dev/upstream.js'
import { launchChromium } from '../helpers/chromium.js'
import { route } from '../helpers/gateway.js'
import { gatewayOverHttps } from '../helpers/https-sites.js'

t.test(
  'on https the session cookie is __Host-Http-: Chromium refuses it from script, so XSS cannot plant a session',
  async (t) => {
    const upstream = await startEchoUpstream()
    t.teardown(() => upstream.close())
    const { base, gateway } = await gatewayOverHttps(t, undefined, [route('/api', upstream.url)])
    const name = gateway.app.gatehouse.config.session.cookieName

    const browser = await launchChromium(t, ['--ignore-certificate-errors'])

    /** Signs `user` in in a fresh browser context; returns the context and its page. */
    const signIn = async (user: string) => {
      const context = await browser.newContext({ ignoreHTTPSErrors: true })
      const page = await context.newPage()
      await page.goto(`${base}/auth/login`)
      const loginState = (await context.cookies(base)).find((c) => c.name.includes('-login.'))
      await page.fill('input[name="login"]', user)
      await page.fill('input[name="password"]', 'any')
      await page.click('button[type="submit"]')
      await page.locator('input[name="prompt"][value="consent"]').waitFor({ state: 'attached' })
      await Promise.all([page.waitForURL(`${base}/`), page.click('button[type="submit"]')])
      return { context, page, loginState }
    }

    const mallory = await signIn('mallory')
    const stored = await mallory.context.cookies(base)
    const session = stored.find((c) => c.name === name)
    t.equal(name, '__Host-Http-gatehouse')
    t.ok(session, `Chromium ${browser.version()} stored ${name}`)
    t.same(
      { secure: session?.secure, httpOnly: session?.httpOnly, path: session?.path, domain: session?.domain },
      { secure: true, httpOnly: true, path: '/', domain: 'localhost' },
      'Secure, HttpOnly, Path=/, host-only',
    )
    t.same(
      {
        name: mallory.loginState?.name.replace(/\.[\w-]+$/, '.<hash>'),
        secure: mallory.loginState?.secure,
        httpOnly: mallory.loginState?.httpOnly,
      },
      { name: `${name}-login.<hash>`, secure: true, httpOnly: true },
      'the login-state cookie carries the same prefix',
    )

    // Script in Alice's signed-out page (XSS) plants Mallory's valid session
    // under the cookie's name, and under the name before __Host-Http-.
    const victim = await browser.newContext({ ignoreHTTPSErrors: true })
    const page = await victim.newPage()
    await page.goto(`${base}/healthz`)
    const who = () =>
      page.evaluate(async () => (await fetch('/auth/user', { headers: { 'x-csrf': '1' } })).status)
    await page.evaluate(
      ([cookie, value]) => {
        // biome-ignore lint/suspicious/noDocumentCookie: the attack under test is script writing document.cookie
        document.cookie = `${cookie}=${value}; Secure; Path=/`
      },
      [name, session!.value],
    )
    const viaCookieStore = await page.evaluate(
      ([cookie, value]) =>
        (globalThis as unknown as { cookieStore: { set(c: object): Promise<void> } }).cookieStore
          .set({ name: cookie, value, path: '/' })
          .then(
            () => 'set',
            () => 'refused',
          ),
      [name, session!.value],
    )
    t.equal(viaCookieStore, 'refused', 'and from the Cookie Store API')
    t.notOk(
      (await victim.cookies(base)).some((c) => c.name === name),
      'Chromium refuses a __Host-Http- cookie from script',
    )
    t.equal(await who(), 401, 'Alice is not signed in as Mallory')
    await page.evaluate((value) => {
      // biome-ignore lint/suspicious/noDocumentCookie: the attack under test is script writing document.cookie
      document.cookie = `__Host-gatehouse=${value}; Secure; Path=/`
    }, session!.value)
    t.ok(
      (await victim.cookies(base)).some((c) => c.name === '__Host-gatehouse'),
      'a plain __Host- cookie, script may set',
    )
    t.equal(await who(), 401, 'and Gatehouse does not read that name')

    const alice = await signIn('alice')
    const answer = await alice.page.evaluate(async () => {
      const response = await fetch('/api/x', { headers: { 'x-csrf': '1' } })
      return { status: response.status, body: await response.json() }
    })
    t.equal(answer.status, 200, 'a signed-in call works over https')
    t.equal(answer.body.token.present, true)
    t.notMatch(
      String(upstream.requests.at(-1)?.headers.cookie ?? ''),
      /gatehouse/i,
      'no cookie of ours upstream',
    )
  },
)
