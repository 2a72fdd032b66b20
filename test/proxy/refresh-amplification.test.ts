import t, { type Test } from 'tap'
import { type DevIdp, startDevIdp } from '../../dev/idp.js'
import { buildGateway } from '../../src/server/gateway.js'
import { createRedisStores } from '../../src/server/redis-stores.js'
import { CLIENT_ID, CLIENT_SECRET, listenOn, route, TestClock, testConfig } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { onFreePorts } from '../helpers/ports.js'
import { startRedis } from '../helpers/redis.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

const REFUSED = 'Bearer error="invalid_token", error_description="not accepted here"'

interface Options {
  readonly replicas?: number
  readonly store?: 'memory' | 'redis'
  readonly clock?: TestClock
  readonly retryCooldown?: number
}

/**
 * Gateways in front of an upstream that answers every request 401
 * `invalid_token` (RFC 6750 §3.1), as a resource server with the wrong
 * audience or a stale key set does, and the rotating dev IdP, whose
 * refresh grants are what such an upstream would make the gateway spend.
 */
async function setup(t: Test, options: Options = {}) {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  upstream.answer((res) => res.writeHead(401, { 'www-authenticate': REFUSED }).end('refused'))
  const count = options.replicas ?? 1
  const keyPrefix = `${redis.prefix}amp${Math.random().toString(36).slice(2)}:`
  const { idp, apps, urls } = await onFreePorts(count, async (ports) => {
    const publicUrl = `http://127.0.0.1:${ports[0]}`
    // Tokens live an hour: no refresh in these tests is due to expiry.
    const idp: DevIdp = await startDevIdp({
      accessTokenTtl: 3_600,
      clients: [
        { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`${publicUrl}/auth/callback`] },
      ],
    })
    const apps: Awaited<ReturnType<typeof buildGateway>>[] = []
    try {
      for (const port of ports) {
        const config = testConfig({
          port,
          publicUrl,
          issuer: idp.issuer,
          ...(options.store === 'redis' ? { store: redis.url, keyPrefix } : {}),
          ...(options.retryCooldown === undefined ? {} : { retryCooldown: options.retryCooldown }),
          routes: [route('/api', upstream.url), route('/other', upstream.url)],
        })
        const now = options.clock?.now ?? Date.now
        const stores = options.store === 'redis' ? await createRedisStores(config, now) : undefined
        const app = await buildGateway(config, { now, ...(stores ? { stores } : {}) })
        await listenOn(app, port)
        apps.push(app)
        await app.gatehouse.whenDiscovered()
      }
    } catch (err) {
      for (const app of apps) await app.close()
      await idp.close()
      throw err
    }
    return { idp, apps, urls: ports.map((p) => `http://127.0.0.1:${p}`) }
  })
  t.teardown(async () => {
    for (const app of apps) await app.close()
    await idp.close()
  })
  const { jar } = await login(urls[0]!)
  for (const url of urls.slice(1)) jar.set(url, 'gatehouse', jar.get(urls[0]!, 'gatehouse')!)
  idp.resetStats()
  upstream.seen.length = 0
  /** `n` calls one after another, round-robin over the replicas; their statuses. */
  const calls = async (path: string, n: number) => {
    const statuses: number[] = []
    for (let i = 0; i < n; i++) statuses.push((await apiCall(jar, `${urls[i % urls.length]}${path}`)).status)
    return statuses
  }
  const cooldowns = async () => {
    let total = 0
    for (const app of apps) {
      const text = await app.gatehouse.metrics.registry.metrics()
      for (const [, n] of text.matchAll(/^gatehouse_upstream_token_retry_cooldowns_total\{[^}]*\} (\d+)$/gm))
        total += Number(n)
    }
    return total
  }
  return { idp, upstream, calls, cooldowns, jar, urls }
}

t.test('an upstream that refuses every token: 30 requests make one refresh, not 30', async (t) => {
  const { idp, upstream, calls, cooldowns, jar, urls } = await setup(t)
  const url = urls[0]!
  const statuses = await calls('/api/x', 30)
  t.same(new Set(statuses), new Set([401]), 'the refusals reach the browser')
  t.equal(idp.stats.refreshGrants, 1, 'one refresh at the IdP for 30 refusals')
  t.equal(upstream.seen.length, 31, 'the first request was replayed once; the other 29 were not')
  t.equal(await cooldowns(), 29, 'each refusal passed on in the cool-down is counted')
  const passed = await apiCall(jar, `${url}/api/x`)
  t.equal(passed.text, 'refused', 'the held answer reaches the browser whole')
  t.equal(passed.headers.get('www-authenticate'), REFUSED)
})

t.test('the cool-down is per route: another route gets its own one refresh', async (t) => {
  const { idp, calls } = await setup(t)
  await calls('/api/x', 5)
  await calls('/other/x', 5)
  t.equal(idp.stats.refreshGrants, 2, 'one forced refresh per route')
})

t.test('replicas sharing Redis share the cool-down: still one refresh', async (t) => {
  const { idp, upstream, calls, cooldowns } = await setup(t, { replicas: 3, store: 'redis' })
  const statuses = await calls('/api/x', 30)
  t.same(new Set(statuses), new Set([401]))
  t.equal(idp.stats.refreshGrants, 1, 'one refresh across three instances')
  t.equal(idp.stats.refreshReplays, 0)
  t.equal(upstream.seen.length, 31)
  t.equal(await cooldowns(), 29)
})

t.test('the cool-down ends: then one more refresh may be forced', async (t) => {
  const clock = new TestClock().freeze()
  const { idp, calls } = await setup(t, { clock })
  await calls('/api/x', 3)
  t.equal(idp.stats.refreshGrants, 1)
  clock.advance(59_000)
  await calls('/api/x', 3)
  t.equal(idp.stats.refreshGrants, 1, 'still inside the minute')
  clock.advance(2_000)
  await calls('/api/x', 3)
  t.equal(idp.stats.refreshGrants, 2, 'a minute on, one more')
})

t.test('retryCooldown: 0 forces a refresh for every refused token, as before', async (t) => {
  const { idp, calls } = await setup(t, { retryCooldown: 0 })
  await calls('/api/x', 5)
  t.equal(idp.stats.refreshGrants, 5)
})
