/**
 * A reload from `oidc:` to `identityProviders:` moves the callback from
 * {basePath}/callback to {basePath}/callback/<name>: a sign-in that was at
 * the IdP meanwhile comes back to an address no provider has, a 404, its
 * code sent nowhere, and the user starts again; docs/identity-providers.md
 * ("Moving from oidc:") says so.
 */
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { followLoginFlow, jarFetch } from '../helpers/login.js'
import { configText, startReloadable } from '../helpers/reloadable.js'

t.test('a sign-in pending across a move from oidc: to identityProviders: comes back to a 404', async (t) => {
  const stack = await startReloadable(t, () => [])
  const jar = new CookieJar()
  const start = await jarFetch(jar, `${stack.url}/auth/login?returnTo=/`)
  const callbackUrl = await followLoginFlow(jar, start.location!, 'alice')
  t.equal(new URL(callbackUrl).pathname, '/auth/callback')
  const { issuer } = stack.input
  stack.configMap.write(configText({ ...stack.input, identityProviders: [{ name: 'default', issuer }] }))
  t.equal((await stack.running.reload()).result, 'applied')
  const callback = await jarFetch(jar, callbackUrl)
  t.equal(callback.status, 404)
  t.equal(jar.get(stack.url, 'gatehouse'), undefined, 'no session')
  const again = await jarFetch(new CookieJar(), `${stack.url}/auth/login?returnTo=/`)
  t.match(new URL(again.location!).searchParams.get('redirect_uri'), /\/auth\/callback\/default$/)
})
