import type { AddressInfo } from 'node:net'
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { cacheHeardStoreOutage } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startStack } from '../helpers/stack.js'
import { pollUntil } from '../helpers/within.js'

t.test(
  'Redis down: 503 session_store_unavailable with Retry-After, /readyz 503, no crash, sessions kept',
  async (t) => {
    if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
    const redis = await startRedis()
    t.teardown(() => redis.stop())
    const stack = await startStack(t, { config: { store: redis.url, keyPrefix: redis.prefix } })
    const base = stack.gateway.url
    const { jar } = await login(base)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200)

    await redis.kill()
    await cacheHeardStoreOutage(stack.gateway.app)
    const started = Date.now()
    const down = await apiCall(jar, `${base}/api/orders`)
    t.equal(down.status, 503)
    t.equal(down.json().error, 'session_store_unavailable')
    t.ok(Number(down.headers.get('retry-after')) > 0)
    t.ok(Date.now() - started < 1_500, 'answered quickly')
    t.notMatch(down.headers.getSetCookie().join(), /gatehouse=;/, 'the cookie is kept')
    const notReady = await jarFetch(new CookieJar(), `${base}/readyz`)
    t.equal(notReady.status, 503)
    t.equal(
      notReady.headers.get('retry-after'),
      '2',
      "/readyz takes the store's Retry-After from the catalogue",
    )
    t.match(notReady.json(), { status: 'not_ready', checks: { store: /\S/, idp: 'ok' } })
    t.equal((await jarFetch(new CookieJar(), `${base}/healthz`)).status, 200, 'alive all the same')

    await redis.restart()
    await pollUntil(async () => (await jarFetch(new CookieJar(), `${base}/readyz`)).status === 200)
    t.equal(
      (await apiCall(jar, `${base}/api/orders`)).status,
      200,
      'the same session works after Redis returns',
    )
  },
)

t.test('a restarted gateway keeps serving sessions stored in Redis', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const first = await startStack(t, { config: { store: redis.url, keyPrefix: redis.prefix } })
  const { jar } = await login(first.gateway.url)
  const cookie = jar.get(first.gateway.url, 'gatehouse')!
  await first.gateway.close()

  // The same config on a port of its own: behind a load balancer, the same origin.
  const { buildGateway } = await import('../../src/server/gateway.js')
  const app = await buildGateway({ ...first.config, server: { ...first.config.server, port: 0 } })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  await app.gatehouse.whenDiscovered()
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const again = new CookieJar()
  again.set(url, 'gatehouse', cookie)
  t.equal((await apiCall(again, `${url}/api/orders`)).status, 200)
})
