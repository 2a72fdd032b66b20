/**
 * A request whose session ended while it waited on that session's refresh
 * must not clear the browser's session cookie: by the time it answers,
 * the browser may hold another session's cookie, set by the sign-in that
 * ended the old one (session fixation: a sign-in over a live session
 * replaces it), and a `Set-Cookie` that clears a name clears whatever
 * value the browser holds. The in-flight request's 401 cleared the new
 * cookie, and the user who had just signed in was signed out by the
 * gateway's own race. The browser's next request with the dead cookie
 * still has it cleared (`Sessions.current`).
 */
import t from 'tap'
import { apiCall, followLogoutLink, login } from '../helpers/login.js'
import { refreshingStack } from '../helpers/refreshing-stack.js'

/** A gate the first call waits at, and `reached` once it is called; later calls pass. */
function firstHeld() {
  let release!: () => void
  const held = new Promise<void>((resolve) => {
    release = resolve
  })
  let reachedIt!: () => void
  const reached = new Promise<void>((resolve) => {
    reachedIt = resolve
  })
  let calls = 0
  const gate = () => {
    if (++calls > 1) return Promise.resolve()
    reachedIt()
    return held
  }
  return { gate, reached, release }
}

t.test(
  'a sign-in again while the replaced session refreshes: its answer, stored nowhere, leaves the new cookie',
  async (t) => {
    const { stack, base } = await refreshingStack(t)
    const { jar } = await login(base)
    const before = jar.get(base, 'gatehouse')
    // The IdP rotates the refresh token and is slow to say so.
    const { gate, reached, release } = firstHeld()
    stack.idp.holdTokenAnswers(gate)
    const inFlight = apiCall(jar, `${base}/api/scoped`)
    await reached

    const again = await login(base, { jar })
    t.equal(again.callback.status, 302, 'she signs in again in the same browser')
    t.not(jar.get(base, 'gatehouse'), before, 'which holds the new session’s cookie')
    release()
    const answer = await inFlight
    t.equal(answer.status, 401, 'the request of the replaced session ends with it')
    t.equal(answer.json<{ error: string }>().error, 'session_expired')
    t.notOk(
      answer.headers.getSetCookie().some((line) => line.startsWith('gatehouse=')),
      'without touching the session cookie',
    )
    const user = await apiCall(jar, `${base}/auth/user`)
    t.equal(user.status, 200, 'she is still signed in, in the new session', { body: user.text })
    t.equal((await apiCall(jar, `${base}/api/scoped`)).status, 200, 'which refreshes')
    t.equal(stack.idp.stats.refreshReplays, 0, 'no refresh token was replayed')
    t.equal(stack.idp.stats.revokedGrants, 0, 'the grant both sessions continued is kept')
  },
)

t.test(
  'another user signs in over a session whose refresh is on its way: the refusal of its revoked grant leaves the new cookie',
  async (t) => {
    const { stack, base, withCookieOf } = await refreshingStack(t)
    const alice = await login(base)
    const browser = withCookieOf(alice.jar)
    // The refresh reaches the IdP only after Bob's sign-in revoked Alice's grant.
    const { gate, reached, release } = firstHeld()
    stack.idp.holdTokenRequests(gate)
    const inFlight = apiCall(browser, `${base}/api/scoped`)
    await reached

    const bob = await login(base, { user: 'bob', jar: browser })
    t.equal(bob.callback.status, 302, 'bob signs in over alice’s session')
    t.equal(stack.idp.stats.revokedGrants, 1, 'alice’s grant is revoked')
    release()
    const answer = await inFlight
    t.equal(answer.status, 401, 'her request ends with her session')
    t.equal(stack.idp.stats.refreshGrants, 0, 'the IdP refused her refresh token')
    t.notOk(
      answer.headers.getSetCookie().some((line) => line.startsWith('gatehouse=')),
      'without touching the session cookie',
    )
    const user = await apiCall(browser, `${base}/auth/user`)
    t.equal(user.status, 200, 'bob is still signed in', { body: user.text })
    t.equal(user.json<{ sub: string }>().sub, 'bob')
  },
)

// A sign-in over the session would not do here: the old cookie's requests
// leave the new cookie alone too (test/session/request-with-a-replaced-
// sessions-cookie-keeps-the-browsers-new-cookie.test.ts).
t.test('a request with the cookie of a session already logged out still has it cleared', async (t) => {
  const { base, withCookieOf } = await refreshingStack(t)
  const { jar } = await login(base)
  const stale = withCookieOf(jar)
  t.equal((await followLogoutLink(jar, base)).status, 200, 'she logs out')
  const answer = await apiCall(stale, `${base}/api/scoped`)
  t.equal(answer.status, 401)
  t.ok(
    answer.headers.getSetCookie().some((line) => /^gatehouse=;/.test(line)),
    'the dead cookie is cleared',
  )
  t.equal(stale.get(base, 'gatehouse'), undefined)
})

/**
 * Probe of the same change from the other side: a session truly signed out
 * elsewhere ("log out everywhere" in her other browser) while its refresh
 * was on its way, with no new session in this browser. The 401 leaves the
 * dead cookie; the SPA's next request must still have it cleared, and be
 * told to sign in, not keep the dead cookie.
 */
t.test(
  'a session logged out everywhere while its refresh is on its way: its 401 keeps the cookie, the next request clears it',
  async (t) => {
    const { stack, base } = await refreshingStack(t)
    const here = await login(base)
    const there = await login(base)
    const { gate, reached, release } = firstHeld()
    stack.idp.holdTokenRequests(gate)
    const inFlight = apiCall(here.jar, `${base}/api/scoped`)
    await reached

    const everywhere = await apiCall(there.jar, `${base}/auth/logout-everywhere`, { method: 'POST' })
    t.ok(everywhere.status < 400, 'she logs out everywhere from her other browser', { body: everywhere.text })
    release()
    const answer = await inFlight
    t.equal(answer.status, 401, 'the request of the ended session ends with it')
    t.equal(answer.json<{ error: string }>().error, 'session_expired', 'told to sign in again')
    const user = await apiCall(here.jar, `${base}/auth/user`)
    t.equal(user.status, 401, 'the next request is refused')
    t.equal(
      user.json<{ error: string }>().error,
      'unauthenticated',
      'as signed out, which the SPA signs in from',
    )
    t.ok(
      user.headers.getSetCookie().some((line) => /^gatehouse=;/.test(line)),
      'and has the dead cookie cleared',
    )
    t.equal(here.jar.get(base, 'gatehouse'), undefined, 'which the browser no longer holds')
  },
)
