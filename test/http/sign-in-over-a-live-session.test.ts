/**
 * Session fixation (docs/security.md): a browser that completes a sign-in
 * while it still carries a session cookie, its own of before or one an
 * attacker planted, comes away with a new cookie naming a new session, and
 * the session the old cookie named is gone from the store, even when the
 * two are sessions of different identity providers.
 */
import t from 'tap'
import { sessionRefOf } from '../helpers/app.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { apiCall, login } from '../helpers/login.js'
import { startTwoIdps } from '../helpers/two-idps.js'

t.test(
  "a sign-in at one provider over a live session of another's replaces the cookie and ends the old session",
  async (t) => {
    const set = await startTwoIdps(t)
    const base = set.urls[0]!
    const app = set.apps[0]!
    const store = app.gatehouse.stores.sessions

    // Mallory signs in at corp, and her cookie ends up in Alice's browser.
    const mallory = await login(base, { user: 'mallory', params: { idp: 'corp' } })
    const planted = mallory.jar.get(base, 'gatehouse')!
    const plantedRef = sessionRefOf(app, planted)
    const alice = new CookieJar()
    alice.set(base, 'gatehouse', planted)
    t.equal((await apiCall(alice, `${base}/auth/user`)).json().sub, 'mallory', 'the planted cookie works')

    const signedIn = await login(base, { user: 'alice', params: { idp: 'partner' }, jar: alice })
    t.equal(signedIn.callback.status, 302)
    const cookie = alice.get(base, 'gatehouse')!
    t.not(cookie, planted, 'the sign-in set a new cookie')
    t.not(sessionRefOf(app, cookie).id, plantedRef.id, 'naming a new session')
    const user = (await apiCall(alice, `${base}/auth/user`)).json()
    t.match(user, { idp: 'partner', sub: 'alice' })

    t.equal(
      await store.get(plantedRef, Date.now(), { touch: false }),
      undefined,
      'the session the planted cookie named is gone from the store',
    )
    t.equal((await apiCall(mallory.jar, `${base}/auth/user`)).status, 401, 'so Mallory is no longer in it')
  },
)
