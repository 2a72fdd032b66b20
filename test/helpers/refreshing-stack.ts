import type { Test } from 'tap'
import { sessionRefOf } from './app.js'
import { CookieJar } from './cookie-jar.js'
import { route } from './gateway.js'
import { followLogoutLink } from './login.js'
import { LogLines } from './reloadable.js'
import { defaultRoutes, type StackOptions, startStack } from './stack.js'

/** A gateway whose `/api/scoped` redeems the session's refresh token at its first request, and its log. */
export async function refreshingStack(t: Test, options: StackOptions = {}) {
  const log = new LogLines()
  const stack = await startStack(t, {
    ...options,
    routes: (upstream) => [
      ...defaultRoutes(upstream),
      route('/api/scoped', upstream, { scopes: ['openid', 'offline_access'] }),
    ],
    config: { logLevel: 'info', ...options.config },
    gateway: { logStream: log.stream, ...options.gateway },
  })
  const base = stack.gateway.url
  const app = stack.gateway.app
  /** The refresh token of the session `jar`'s cookie names, as the store holds it. */
  const refreshTokenOf = async (jar: CookieJar) => {
    const ref = sessionRefOf(app, jar.get(base, 'gatehouse')!)
    return (await app.gatehouse.stores.sessions.get(ref, Date.now(), { touch: false }))!.tokens.refreshToken!
  }
  /** A browser that holds `jar`'s session cookie and no IdP session: the IdP asks it who signs in. */
  const withCookieOf = (jar: CookieJar) => {
    const browser = new CookieJar()
    browser.set(base, 'gatehouse', jar.get(base, 'gatehouse')!)
    return browser
  }
  /**
   * The session of `jar` logs out, and the grant it shares with another
   * session, whose refresh token is `token`, is kept: that session can
   * still use it, and the log says why.
   */
  const logoutKeepsTheGrant = async (t: Test, jar: CookieJar, token: string) => {
    t.equal((await followLogoutLink(jar, base)).status, 200, 'she logs out in the other browser')
    t.equal(stack.idp.stats.revokedGrants, 0, 'her grant is kept')
    t.equal((await stack.idp.introspect(token)).active, true, 'the refresh token that uses it still works')
    t.ok(
      log.lines.find((l) => /^logout: its refresh token is not revoked, since another session/.test(l.msg)),
      'the log says why',
    )
  }
  return { stack, base, log, refreshTokenOf, withCookieOf, logoutKeepsTheGrant }
}
