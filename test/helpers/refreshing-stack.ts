import type { Test } from 'tap'
import { sessionRefOf } from './app.js'
import { CookieJar } from './cookie-jar.js'
import { route } from './gateway.js'
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
  return { stack, base, log, refreshTokenOf, withCookieOf }
}
