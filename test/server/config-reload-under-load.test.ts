import t, { type Test } from 'tap'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { configText, startReloadable } from '../helpers/reloadable.js'
import { until } from '../helpers/websocket.js'

const WORKERS = 32

/**
 * A storm of calls across a token expiry, and a reload that adds a route
 * while the refresh runs. `newTokenSettings` also changes `tokens`, so
 * the new config gets IdP parts of its own (a new client, discovered
 * before the swap) and meets the refresh in flight through the shared lock.
 */
async function stormReload(t: Test, newTokenSettings: boolean) {
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
  // and the reload lands while they do.
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
      ...(newTokenSettings ? { refreshBefore: 6_000 } : {}),
      routes: [route('/api/orders', stack.upstream.url), route('/api/new', stack.upstream.url)],
    }),
  )
  // The swap, seen in this process, apart from the first answer on the new
  // route, which queues behind the storm's callers.
  t.ok(await until(() => stack.running.config.routes.length === 2), 'the new config is swapped in')
  const reloaded = performance.now() - swapped
  t.ok(
    await until(async () => (await apiCall(jar, `${url}/api/new`)).status === 200),
    'the new route is served',
  )
  const answered = performance.now() - swapped
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
  t.equal(stack.running.config.routes.length, 2, 'the new config runs')
  return { reloaded, answered }
}

t.test(
  'a reload in a storm across a token expiry: no failed request, one refresh, no replay, the new config within a second',
  async (t) => {
    const { reloaded, answered } = await stormReload(t, false)
    // The bound: the new config serves within a second of the file
    // changing (the watch, the whole check on its own thread, the build and
    // the swap). The first answer on the new route also queues behind the
    // storm's 32 callers: 0.26 to 1.2 s in eight runs beside a suite on 2
    // vCPUs, so it gets a bound of its own; a reload that waited for the
    // storm would wait until its end, past the 5 s the route is polled for.
    t.ok(reloaded < 1_000, `the new config was swapped in ${Math.round(reloaded)} ms after the file changed`)
    t.ok(answered < 3_000, `the new route answered ${Math.round(answered)} ms after the file changed`)
  },
)

t.test(
  'the same with new token settings: new IdP parts meet the refresh in flight through the lock, still one refresh',
  async (t) => {
    const { reloaded, answered } = await stormReload(t, true)
    // A new client is discovered before the swap: slower, and not bounded here.
    t.comment(
      `swapped in ${Math.round(reloaded)} ms, the new route answered ${Math.round(answered)} ms after the file changed`,
    )
  },
)
