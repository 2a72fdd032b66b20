import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { configText, startReloadable } from '../helpers/reloadable.js'

/**
 * With the memory store there is no shared copy of client-credentials
 * tokens: each `ClientTokens` keeps its own, and a reload that changes the
 * token settings (here `tokens.refreshBefore`) builds new ones. The lock
 * they take is the process's, which outlives both. A request under the new
 * config that came while the old config's fetch was out waited for its lock,
 * found no shared copy (there is none), and answered 503
 * `client_token_unavailable`, though the fetch succeeded: every request to
 * the route for as long as the IdP took to answer. The process now keeps
 * one copy the old and new parts share (MemoryTokenCache).
 */
t.test(
  'a client route asked while the replaced config fetches its token is served, not refused',
  async (t) => {
    const s = await startReloadable(t, (upstream) => [
      route('/reports', upstream, { token: 'client', scopes: ['reports.read'] }),
    ])
    const { jar } = await login(s.url)
    let asked!: () => void
    const fetching = new Promise<void>((resolve) => {
      asked = resolve
    })
    // The old config's fetch is held at the IdP until the new config serves a request.
    s.idp.setTokenEndpointDelay(() => {
      asked()
      return 1_500
    })
    const before = apiCall(jar, `${s.url}/reports/before`)
    await fetching
    s.idp.setTokenEndpointDelay(0)

    s.configMap.write(configText({ ...s.input, refreshBefore: 4_000 }))
    t.match(await s.running.reload(), { result: 'applied' })
    const after = await apiCall(jar, `${s.url}/reports/after`)
    t.equal(after.status, 200, `served under the new config: ${after.text.slice(0, 160)}`)
    t.equal((await before).status, 200, 'and under the old one')
    const seen = s.upstream.requests.filter((r) => r.authorization?.startsWith('Bearer '))
    t.equal(seen.length, 2, 'both reached the upstream with a token')
    t.equal(s.idp.stats.clientCredentialsGrants, 1, "one fetch: the new config takes the old one's token")
  },
)
