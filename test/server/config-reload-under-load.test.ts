import t from 'tap'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { configText, startReloadable } from '../helpers/reloadable.js'
import { until } from '../helpers/websocket.js'

const WORKERS = 32

t.test(
  'a reload in a storm across a token expiry: no failed request, one refresh, no replay, the new route within a second',
  async (t) => {
    const clock = new TestClock()
    const stack = await startReloadable(t, (upstream) => [route('/api/orders', upstream)], {
      accessTokenTtl: 60,
      now: clock.now,
    })
    const { url, idp } = stack
    const { jar } = await login(url)
    t.equal((await apiCall(jar, `${url}/api/orders`)).status, 200)
    idp.resetStats()

    // Past the access token's expiry: the storm's first calls refresh it,
    // and the reload lands while they do. The new file also changes the
    // token settings, so the new config gets IdP parts of its own and
    // meets the refresh in flight through the shared lock.
    clock.advance(61_000)
    const statuses: number[] = []
    let stop = false
    const workers = Array.from({ length: WORKERS }, async () => {
      while (!stop) statuses.push((await apiCall(jar, `${url}/api/orders`)).status)
    })
    await until(() => idp.stats.refreshGrants > 0 || statuses.length > 0)
    const swapped = performance.now()
    stack.configMap.write(
      configText({
        ...stack.input,
        refreshBefore: 6_000,
        routes: [route('/api/orders', stack.upstream.url), route('/api/new', stack.upstream.url)],
      }),
    )
    t.ok(
      await until(async () => (await apiCall(jar, `${url}/api/new`)).status === 200),
      'the new route is served',
    )
    const elapsed = performance.now() - swapped
    t.ok(elapsed < 1_000, `the new route answered ${Math.round(elapsed)} ms after the file changed`)
    // The storm goes on for a while on the new config.
    const atSwap = statuses.length
    await until(() => statuses.length >= atSwap + 5 * WORKERS)
    stop = true
    await Promise.all(workers)

    t.ok(statuses.length > 5 * WORKERS, `${statuses.length} calls in the storm`)
    t.same(
      statuses.filter((s) => s !== 200),
      [],
      'no call failed',
    )
    t.equal(idp.stats.refreshGrants, 1, 'one refresh, across both configs')
    t.equal(idp.stats.refreshReplays, 0, 'no refresh token replayed')
    t.equal(idp.stats.revokedGrants, 0)
    t.equal(stack.running.config.tokens.refreshBefore, 6_000, 'the new config runs')
  },
)
