import t from 'tap'
import { launchChromium, signInInChromium } from '../helpers/chromium.js'
import { route } from '../helpers/gateway.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'
import { startStack } from '../helpers/stack.js'

/** Chromium's bound on one domain's cookies, past which it purges down to 150 (RFC 6265 §6.1 asks for 50). */
const DOMAIN_MAX_COOKIES = 180

/**
 * An upstream that sets as many cookies as the browser keeps for the
 * site pushes the oldest used out of its jar: the session cookie, read
 * last when the request went out, went first, and the user was signed
 * out by an upstream. The session cookie is `Priority=High`, which
 * Chromium's purge spares while it has lower ones to drop.
 */
t.test(
  'an upstream that floods the cookie jar does not push the session cookie out (Chromium)',
  async (t) => {
    const upstream = await scriptedUpstream()
    t.teardown(() => upstream.close())
    upstream.answer((res, url) => {
      if (url.startsWith('/public/flood')) {
        // `?high`: each of the upstream's cookies asks for the session cookie's own priority.
        const priority = url.endsWith('?high') ? '; Priority=High' : ''
        res.setHeader(
          'set-cookie',
          Array.from(
            { length: DOMAIN_MAX_COOKIES },
            (_, i) => `flood${i}=${'x'.repeat(20)}; Path=/; Max-Age=3600${priority}`,
          ),
        )
      }
      res.setHeader('content-type', 'text/html')
      res.end('<!doctype html><title>public</title>')
    })
    const stack = await startStack(t, {
      routes: () => [route('/public', upstream.url, { token: 'none', csrf: false })],
    })
    const base = stack.gateway.url
    const browser = await launchChromium(t)
    const context = await browser.newContext()
    const page = await context.newPage()
    await signInInChromium(page, base, '/public/home')

    const session = (await context.cookies(base)).find((c) => c.name === 'gatehouse')
    t.ok(session, 'signed in')

    for (const flood of ['/public/flood', '/public/flood?high']) {
      const flooded = await page.evaluate(async (path) => (await fetch(path)).status, flood)
      t.equal(flooded, 200)
      const names = (await context.cookies(base)).map((c) => c.name)
      t.ok(
        names.length < DOMAIN_MAX_COOKIES,
        `${flood}: the browser purged its jar (${names.length} cookies kept)`,
      )
      t.ok(names.includes('gatehouse'), `${flood}: the session cookie is still in it`)
      const me = await page.evaluate(async () => {
        const res = await fetch('/auth/user', { headers: { 'x-csrf': '1' } })
        return { status: res.status, body: (await res.json()) as { sub?: string } }
      })
      t.equal(me.status, 200, `${flood}: and the user is still signed in`)
      t.equal(me.body.sub, 'alice')
    }
  },
)
