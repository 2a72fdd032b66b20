/**
 * RFC 6749 §4.1.2.1: an error the IdP sends the browser back with carries
 * the request's `state`. An IdP that leaves it out (or a sign-in whose
 * cookie is gone) matches no sign-in in progress, and the page said only
 * "This sign-in link has expired or was already used, or cookies are
 * blocked": an IdP that refused the request (an unknown scope, a client
 * not allowed the grant) was named as the user's browser. The page now
 * says the IdP answered with an error, and which, when it is one of the
 * specifications' codes; any other text is not repeated. The
 * `login callback refused` line said neither this nor an error that did
 * carry the sign-in's state (only the code): it now says what the page says.
 */

import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { jarFetch } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'

t.test('an IdP error without state: the page names the error, not an expired link', async (t) => {
  const stack = await startObservedStack(t, {})
  const base = stack.gateway.url
  const jar = new CookieJar()
  t.equal((await jarFetch(jar, `${base}/auth/login`)).status, 302, 'a sign-in in progress')
  const callback = (query: string) => jarFetch(jar, `${base}/auth/callback?${query}`)

  const named = await callback('error=invalid_scope&error_description=scope+foo+is+unknown')
  t.equal(named.status, 400)
  t.match(named.text, /The identity provider answered with an error \(invalid_scope\)/)
  t.match(named.text, /without the state of a sign-in \(RFC 6749 §4.1.2.1 requires it\)/)
  t.notMatch(named.text, /expired or was already used/)

  const other = await callback('error=call+0800+HELPDESK')
  t.equal(other.status, 400)
  t.match(other.text, /The identity provider answered with an error, without the state/)
  t.notMatch(other.text, /HELPDESK/, 'text of anyone’s making is not repeated')

  const stale = await callback('error=access_denied&state=of-a-sign-in-long-gone')
  t.match(stale.text, /error \(access_denied\), for a sign-in this browser no longer has in progress/)

  const none = await callback('code=abc')
  t.match(none.text, /expired or was already used/, 'no error: as before')
  t.match(
    stack.lines.filter((l) => l.msg === 'login callback refused').map((l) => l.reason),
    [
      /error \(invalid_scope\), without the state/,
      /error, without the state/,
      /\(access_denied\)/,
      /expired/,
    ],
    'the log says what the page says',
  )
})

t.test('an IdP error with the state of the sign-in: the log names it, as the page does', async (t) => {
  const stack = await startObservedStack(t, {})
  const base = stack.gateway.url
  const jar = new CookieJar()
  const start = await jarFetch(jar, `${base}/auth/login`)
  const state = new URL(start.location!).searchParams.get('state')!
  const answer = await jarFetch(
    jar,
    // RFC 9207: the dev IdP advertises iss, so its error carries one too.
    `${base}/auth/callback?error=invalid_scope&state=${state}&iss=${encodeURIComponent(stack.idp.issuer)}`,
  )
  t.equal(answer.status, 400)
  t.match(answer.text, /The identity provider answered with an error \(invalid_scope\)/)
  t.match(
    stack.lines.find((l) => l.msg === 'login callback refused'),
    {
      code: 'GATEHOUSE_ERR_LOGIN_FAILED',
      reason: /\(invalid_scope\)/,
    },
  )
})
