/**
 * A sign-in over a live session ends the old session and sets the new
 * one's cookie under the same name (session fixation). An SPA call the
 * browser sent with the old cookie before the sign-in's answer arrived
 * (parallel calls while another tab signs in, or the callback racing the
 * SPA) reached the gateway after the old record was deleted, found no
 * session, and was answered 401 with a `Set-Cookie` clearing the session
 * cookie: the browser dropped the new cookie, and the user who had just
 * signed in was signed out by the gateway's own race. The sign-in now
 * notes the session it replaced, in the store every instance shares, and
 * such a request is refused without touching the cookie; a cookie of a
 * session a logout ended is still cleared.
 */
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { apiCall, followLogoutLink, type JarResponse, login } from '../helpers/login.js'
import { twoInstancesOnOneRedis } from '../helpers/replicas.js'
import { startStack } from '../helpers/stack.js'

/** A browser holding only `jar`'s session cookie at `url`: a request sent with it, whatever `jar` holds later. */
function sentWith(jar: CookieJar, url: string): CookieJar {
  const sent = new CookieJar()
  sent.set(url, 'gatehouse', jar.get(url, 'gatehouse')!)
  return sent
}

const clears = (answer: JarResponse) =>
  answer.headers.getSetCookie().some((line) => /^gatehouse=;/.test(line))
const touchesTheCookie = (answer: JarResponse) =>
  answer.headers.getSetCookie().some((line) => line.startsWith('gatehouse='))

t.test(
  'a request with the cookie a sign-in replaced: 401, the browser’s new cookie left alone (memory store)',
  async (t) => {
    const { gateway } = await startStack(t)
    const base = gateway.url
    const { jar } = await login(base)
    const old = sentWith(jar, base)
    const again = await login(base, { jar })
    t.equal(again.callback.status, 302, 'she signs in again over her live session')
    const fresh = jar.get(base, 'gatehouse')
    t.not(fresh, old.get(base, 'gatehouse'), 'the browser holds the new session’s cookie')

    // Each sent with the old cookie, as calls the SPA made at once would be.
    for (const path of ['/api/orders', '/auth/user']) {
      const answer = await apiCall(sentWith(old, base), `${base}${path}`)
      t.equal(answer.status, 401, `${path} with the old cookie is refused`)
      t.equal(answer.json<{ error: string }>().error, 'unauthenticated', 'as signed out, as before')
      t.notOk(touchesTheCookie(answer), 'without a Set-Cookie for the session cookie')
      // The browser applies the answer to the jar that holds the new cookie.
      jar.store(base, answer.headers.getSetCookie())
    }
    const maybe = await apiCall(sentWith(old, base), `${base}/api/maybe`)
    t.equal(maybe.status, 200, 'an optional-user route serves it as anonymous')
    t.notOk(touchesTheCookie(maybe), 'leaving the cookie alone too')

    t.equal(jar.get(base, 'gatehouse'), fresh, 'the browser still holds the new cookie')
    const user = await apiCall(jar, `${base}/auth/user`)
    t.equal(user.status, 200, 'and is signed in, in the new session', { body: user.text })
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'whose API calls are served')
  },
)

t.test('negative controls: a cookie of a session a logout ended is still cleared', async (t) => {
  const { gateway } = await startStack(t)
  const base = gateway.url

  const { jar } = await login(base)
  const loggedOut = sentWith(jar, base)
  t.equal((await followLogoutLink(jar, base)).status, 200, 'she logs out')
  const answer = await apiCall(loggedOut, `${base}/api/orders`)
  t.equal(answer.status, 401, 'a request with the logged-out cookie is refused')
  t.ok(clears(answer), 'and the dead cookie cleared')
  t.equal(loggedOut.get(base, 'gatehouse'), undefined)

  // The new session of a sign-in over another is no replaced one.
  const second = await login(base)
  t.equal((await login(base, { jar: second.jar })).callback.status, 302, 'a sign-in over a session')
  const renewed = sentWith(second.jar, base)
  t.equal((await followLogoutLink(second.jar, base)).status, 200, 'whose new session logs out')
  const after = await apiCall(renewed, `${base}/auth/user`)
  t.equal(after.status, 401)
  t.ok(clears(after), 'its cookie is cleared as any logged-out one')
  t.equal(renewed.get(base, 'gatehouse'), undefined)
})

t.test(
  'two instances on one Redis: the sign-in at one, the old cookie at the other, which leaves the new one',
  async (t) => {
    const set = await twoInstancesOnOneRedis(t)
    const [first, second] = set.urls as [string, string]
    const old = sentWith(set.jar, second)

    const again = await login(first, { jar: set.jar })
    t.equal(again.callback.status, 302, 'she signs in again at the first instance')
    const fresh = set.jar.get(first, 'gatehouse')!
    t.not(fresh, old.get(second, 'gatehouse'), 'and holds the new cookie')
    set.jar.set(second, 'gatehouse', fresh)

    const answer = await apiCall(old, `${second}/api/orders`)
    t.equal(answer.status, 401, 'the old cookie is refused at the second instance')
    t.notOk(touchesTheCookie(answer), 'which leaves the session cookie alone')
    set.jar.store(second, answer.headers.getSetCookie())
    t.equal((await apiCall(set.jar, `${second}/api/orders`)).status, 200, 'the new cookie is served there')

    // Negative control across the instances: a logout at the second, its
    // cookie at the first, which has not read the new session (a copy in
    // its local cache would be served until Redis's invalidation came).
    const loggedOut = sentWith(set.jar, second)
    loggedOut.set(first, 'gatehouse', fresh)
    const { logoutUrl } = (await apiCall(set.jar, `${second}/auth/user`)).json<{ logoutUrl: string }>()
    const logout = await apiCall(set.jar, `${second}${logoutUrl}`, { headers: { accept: 'text/html' } })
    t.ok(logout.status < 400, `she logs out at the second (${logout.status})`)
    const dead = await apiCall(loggedOut, `${first}/api/orders`)
    t.equal(dead.status, 401, 'the logged-out cookie is refused at the first')
    t.ok(clears(dead), 'and cleared there')
  },
)
