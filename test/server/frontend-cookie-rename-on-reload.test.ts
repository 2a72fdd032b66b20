/**
 * A reload that changes a frontend's `cookieName` applies, as a changed
 * `session.cookieName` does, and the browsers' cookies keep the old name:
 * that frontend's sessions, and its sign-ins at the IdP meanwhile, start
 * again; the other frontend's carry on. docs/frontends.md says so.
 */
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { apiCall, followLoginFlow, jarFetch, login } from '../helpers/login.js'
import { startTwoFrontends } from '../helpers/two-frontends.js'

t.test(
  "a reload that renames a frontend's cookie ends that frontend's sessions and pending sign-ins only",
  async (t) => {
    const stack = await startTwoFrontends(t, () => ({ staff: { routes: [] }, partners: { routes: [] } }))
    const staff = await login(stack.staff)
    const partners = await login(stack.partners)
    const pending = new CookieJar()
    const start = await jarFetch(pending, `${stack.staff}/auth/login?returnTo=/`)
    const callbackUrl = await followLoginFlow(pending, start.location!, 'bob')

    const reloaded = await stack.reload(() => ({
      staff: { routes: [], cookieName: 'staff-renamed' },
      partners: { routes: [] },
    }))
    t.equal(reloaded.result, 'applied')
    t.equal((await apiCall(staff.jar, `${stack.staff}/auth/user`)).status, 401, 'signs in again')
    t.equal(
      (await apiCall(partners.jar, `${stack.partners}/auth/user`)).status,
      200,
      'the other frontend carries on',
    )
    const callback = await jarFetch(pending, callbackUrl)
    t.equal(callback.status, 400, 'the sign-in page: start again')
    t.match(callback.text, /Start again/)
  },
)
