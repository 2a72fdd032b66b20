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
  const cpuAtWrite = process.cpuUsage()
  /** This process's CPU since the write, ms: about the wall time a machine of its own would take. */
  const cpuSince = () => {
    const { user, system } = process.cpuUsage(cpuAtWrite)
    return (user + system) / 1_000
  }
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
  const reloaded = { wall: performance.now() - swapped, cpu: cpuSince() }
  t.ok(
    await until(async () => (await apiCall(jar, `${url}/api/new`)).status === 200),
    'the new route is served',
  )
  const answered = { wall: performance.now() - swapped, cpu: cpuSince() }
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
    // Both are counted in this process's CPU time, not wall time: the storm
    // keeps the process busy throughout, so a reload that waits still
    // spends CPU for as long as it waits (one held 1.2 s on purpose took
    // 962 ms of CPU even at a load of 14), while the time a loaded machine
    // gives other processes is not counted (a swap took 1104 ms of wall
    // time, and 200 ms of CPU, beside other test files at a load of 18).
    const ms = ({ wall, cpu }: { wall: number; cpu: number }) =>
      `${Math.round(cpu)} ms of CPU (${Math.round(wall)} ms of wall time)`
    t.ok(reloaded.cpu < 1_000, `the new config was swapped in ${ms(reloaded)} after the file changed`)
    t.ok(answered.cpu < 3_000, `the new route answered ${ms(answered)} after the file changed`)
  },
)

t.test(
  'the same with new token settings: new IdP parts meet the refresh in flight through the lock, still one refresh',
  async (t) => {
    const { reloaded, answered } = await stormReload(t, true)
    // A new client is discovered before the swap: slower, and not bounded here.
    t.comment(
      `swapped in ${Math.round(reloaded.wall)} ms (${Math.round(reloaded.cpu)} ms of CPU), the new route answered ${Math.round(answered.wall)} ms (${Math.round(answered.cpu)} ms of CPU) after the file changed`,
    )
  },
)
