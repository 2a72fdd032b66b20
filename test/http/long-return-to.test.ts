import t from 'tap'
import { COOKIE_BYTES_MAX } from '../../src/session/login-cookies.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { followLoginFlow, jarFetch } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

/**
 * A `returnTo` is kept percent-encoded in the login cookie, and a browser
 * drops a cookie over 4096 bytes without a word: the user then went through
 * the IdP only to be told cookies were blocked. Whatever cannot be kept is
 * refused at `/auth/login`, before the browser goes anywhere.
 */

/** `/` and 1000 `"`: 1,001 characters as given, 3,001 once percent-encoded. */
const QUOTES = `/${'%22'.repeat(1000)}`
/** A deep link in Japanese: 600 characters, each 9 once percent-encoded. */
const JAPANESE = `/${encodeURIComponent('日本'.repeat(300))}`

t.test('a returnTo too long once percent-encoded is refused before the IdP', async (t) => {
  const stack = await startStack(t)
  const base = stack.gateway.url
  for (const [returnTo, what] of [
    [QUOTES, 'quotes'],
    [JAPANESE, 'non-ASCII'],
  ] as const) {
    const res = await jarFetch(new CookieJar(), `${base}/auth/login?returnTo=${returnTo}`)
    t.equal(res.status, 400, what)
    t.notOk(res.location, 'the browser is not sent to the IdP')
    t.same(res.headers.getSetCookie(), [], 'no login cookie')
    t.match(res.text, /returnTo must be a relative path/)
  }
})

t.test('a returnTo at the limit signs in and lands where it said', async (t) => {
  const stack = await startStack(t)
  const base = stack.gateway.url
  // 2,048 characters once encoded, most of them from `"`.
  const returnTo = `/${'%22'.repeat(682)}x`
  const jar = new CookieJar()
  const start = await jarFetch(jar, `${base}/auth/login?returnTo=${returnTo}`)
  t.equal(start.status, 302)
  const [cookie] = start.headers.getSetCookie()
  const pair = cookie!.split(';')[0]!
  t.ok(pair.length <= COOKIE_BYTES_MAX, `the login cookie is ${pair.length} bytes`)
  const done = await jarFetch(jar, await followLoginFlow(jar, start.location!, 'alice'))
  t.equal(done.status, 302)
  t.equal(done.location, `${base}${returnTo}`)
})

t.test(
  'when the rest of the sign-in leaves less room (an RSA DPoP key), the cookie itself is measured',
  async (t) => {
    const stack = await startStack(t, {
      idp: { dpopAlgorithms: ['PS256'] },
      config: { oidc: { dpop: true, dpopAlgorithm: 'PS256' } },
    })
    const base = stack.gateway.url
    const long = `/${'a'.repeat(2000)}`
    const refused = await jarFetch(new CookieJar(), `${base}/auth/login?returnTo=${long}`)
    t.equal(refused.status, 400, 'a returnTo that passes the length check alone')
    t.notOk(refused.location, 'the browser is not sent to the IdP')
    t.same(refused.headers.getSetCookie(), [], 'no login cookie')
    t.match(refused.text, /returnTo is too long to carry through sign-in/)
    t.match(refused.text, /over 4096 bytes/)
    t.match(refused.text, /href="\/auth\/login\?returnTo=%2F"/, '"sign in again" goes home, not here again')

    const jar = new CookieJar()
    const start = await jarFetch(jar, `${base}/auth/login?returnTo=/orders`)
    t.equal(start.status, 302, 'a short one fits beside the key')
    const done = await jarFetch(jar, await followLoginFlow(jar, start.location!, 'alice'))
    t.equal(done.location, `${base}/orders`)
  },
)
