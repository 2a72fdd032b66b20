import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { configText, startReloadable } from '../helpers/reloadable.js'

/**
 * A request may wait through one refresh flight per route audience before
 * its own (src/tokens/audience-rounds.ts). That bound was taken from the routes when the
 * token parts were made, and a reload that adds routes without touching the
 * IdP or token settings keeps those parts: with more new audiences due at
 * once than the old bound allowed, requests got 503 from a healthy IdP.
 */
t.test('routes a reload adds raise the bound on the flights a request waits through', async (t) => {
  const SCOPES = ['openid', 'profile', 'offline_access', 'email']
  // Fifteen distinct scope sets: fifteen audiences of one refresh token
  // (those with email, which the login did not ask for, the IdP refuses).
  const subsets = Array.from({ length: 15 }, (_, n) => SCOPES.filter((_, i) => (n + 1) & (1 << i)))
  const stack = await startReloadable(t, (upstream) => [route('/api/one', upstream)])
  const more = subsets.map((scopes, i) => route(`/api/s${i}`, stack.upstream.url, { scopes }))
  stack.configMap.write(
    configText({ ...stack.input, routes: [route('/api/one', stack.upstream.url), ...more] }),
  )
  t.match(await stack.running.reload(), { result: 'applied' })

  const { jar } = await login(stack.url)
  const first = await Promise.all(subsets.map((_, i) => apiCall(jar, `${stack.url}/api/s${i}/x`)))
  t.same(
    first.map((r) => r.status).filter((status) => status !== 200 && status !== 403),
    [],
    'each new audience is minted or refused by the IdP; none gives up waiting (503)',
  )
  t.ok(first.some((r) => r.status === 200))
  t.equal(stack.idp.stats.refreshReplays, 0)
})
