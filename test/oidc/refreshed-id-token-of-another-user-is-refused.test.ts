/**
 * OIDC Core §12.2: an ID token a refresh returns must name the same user
 * (`sub`) as the login's. An OP that mixes up its grants answered a refresh
 * with another user's, which was kept as the session's ID token: sent as
 * `id_token_hint` at logout and as the subject of `subjectToken: id_token`
 * exchanges, under a session that still showed the first user. The answer
 * is now refused as one that failed validation, naming the deviation; the
 * refresh token it rotated is kept, so nothing is redeemed twice.
 */

import { decodeJwt } from 'jose'
import t from 'tap'
import { sessionRefOf } from '../helpers/app.js'
import type { CookieJar } from '../helpers/cookie-jar.js'
import { apiCall, login } from '../helpers/login.js'
import { type ObservedStack, startObservedStack } from '../helpers/observed-stack.js'

async function sessionOf(stack: ObservedStack, jar: CookieJar) {
  const store = stack.gateway.app.gatehouse.stores.sessions
  const ref = sessionRefOf(stack.gateway.app, jar.get(stack.gateway.url, 'gatehouse')!)
  return (await store.get(ref, stack.clock.now()))!
}

t.test(
  "a refresh answer whose ID token names another user: refused with the reason, the login's ID token kept, no replay",
  async (t) => {
    const stack = await startObservedStack(t, { idp: { quirks: { otherSubOnRefresh: true } } })
    const url = `${stack.gateway.url}/api/orders`
    const { jar } = await login(stack.gateway.url)
    const before = (await sessionOf(stack, jar)).tokens
    const sub = decodeJwt(before.idToken!).sub
    t.ok(sub)

    stack.clock.advance(61_000)
    const answer = await apiCall(jar, url)
    t.equal(answer.status, 503, 'not served with a token of a grant that names another user')
    t.equal(answer.json().error, 'token_refresh_unavailable')
    t.match(answer.json().message, /another user/, 'the message names the deviation')
    t.equal(stack.idp.stats.refreshGrants, 1, 'the IdP carried the refresh out')

    const after = (await sessionOf(stack, jar)).tokens
    t.equal(decodeJwt(after.idToken!).sub, sub, "the session's ID token is still its user's")
    t.not(after.refreshToken, before.refreshToken, 'the refresh token the answer rotated is kept')
    t.match(
      stack.lines.find((l) => l.code === 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE'),
      { level: 40, reason: /ID token.*sub.*OIDC Core §12\.2/ },
      'the log line says what the IdP got wrong',
    )
    const line = JSON.stringify(stack.lines)
    t.notOk(line.includes(`another-${sub}`), 'neither sub is logged')
    t.notOk(line.includes(after.refreshToken!), 'nor the refresh token')

    stack.clock.advance(Number(answer.headers.get('retry-after')) * 1_000)
    t.equal((await apiCall(jar, url)).status, 503, 'the next refresh meets the same answer')
    t.equal(stack.idp.stats.refreshGrants, 2, 'with the rotated refresh token')
    t.equal(stack.idp.stats.refreshReplays, 0, 'never a spent one')
    t.equal((await apiCall(jar, `${stack.gateway.url}/auth/user`)).json().sub, sub)
  },
)
