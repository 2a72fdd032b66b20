import t from 'tap'
import { launchChromium, signInInChromium } from '../helpers/chromium.js'
import { route } from '../helpers/gateway.js'
import { login } from '../helpers/login.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'
import { startStack } from '../helpers/stack.js'

t.test(
  'issue 12 in Chromium: a hostile public upstream cannot swap or end the victim’s session',
  async (t) => {
    const upstream = await scriptedUpstream()
    t.teardown(() => upstream.close())
    const stack = await startStack(t, {
      routes: () => [
        route('/api/orders', upstream.url),
        route('/public', upstream.url, { token: 'none', csrf: false }),
      ],
    })
    const base = stack.gateway.url

    // The attacker signs in on their own and takes their sealed session cookie.
    const attacker = await login(base, { user: 'mallory' })
    const sealed = /gatehouse=([^;]+)/.exec(attacker.jar.header(`${base}/api/orders`)!)![1]!

    // The compromised upstream behind /public plants it under /api, where it
    // would be sent first, and tries the other spellings and a logout too.
    upstream.answer((res, url) => {
      if (url.startsWith('/public')) {
        res.setHeader('set-cookie', [
          `gatehouse=${sealed}; Path=/api`,
          `Gatehouse=${sealed}; Path=/api/orders`,
          `gatehouse-login=${sealed}; Path=/`,
          `=gatehouse=${sealed}; Path=/api`,
          'app_pref=1; Path=/',
        ])
        res.setHeader('content-type', 'text/html')
        res.end('<!doctype html><title>public</title><p>hello</p>')
        return
      }
      res.setHeader('content-type', 'application/json')
      res.end('{"stored":true}')
    })

    const browser = await launchChromium(t)
    const context = await browser.newContext()
    const page = await context.newPage()

    // The victim signs in and lands on the hostile public page.
    await signInInChromium(page, base, '/public/welcome')
    await page.reload()

    // Cookies ignore ports: the IdP's, on the same loopback host, are left out.
    const cookies = (await context.cookies(base)).filter((c) => !c.name.startsWith('_session'))
    t.same(
      cookies.map((c) => `${c.name}@${c.path}`).sort(),
      ['app_pref@/', 'gatehouse@/'],
      "the browser holds its own session cookie and the upstream's app_pref, nothing else",
    )

    const status = await page.evaluate(async () => {
      const res = await fetch('/api/orders', {
        method: 'POST',
        headers: { 'x-csrf': '1', 'content-type': 'application/json' },
        body: JSON.stringify({ item: 'victim order' }),
      })
      return res.status
    })
    t.equal(status, 200)
    const order = upstream.seen.at(-1)!
    t.equal(order.url, '/api/orders')
    t.equal(order.body.toString(), '{"item":"victim order"}')
    const token = String(order.headers.authorization).replace(/^Bearer /, '')
    t.equal(
      (await stack.idp.describe(token))?.sub,
      'alice',
      "the order went upstream with the victim's token",
    )

    const me = await page.evaluate(async () =>
      (await fetch('/auth/user', { headers: { 'x-csrf': '1' } })).json(),
    )
    t.equal((me as { sub: string }).sub, 'alice', 'and the session is still the victim’s')
  },
)
