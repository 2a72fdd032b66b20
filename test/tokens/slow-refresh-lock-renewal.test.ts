import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { startEchoUpstream } from '../../dev/upstream.js'
import { buildGateway } from '../../src/server/gateway.js'
import { createRedisStores } from '../../src/server/redis-stores.js'
import { CLIENT_ID, CLIENT_SECRET, listenOn, route, TestClock, testConfig } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { onFreePorts } from '../helpers/ports.js'
import { startRedis } from '../helpers/redis.js'

const LOCK_TTL = 300
const IDP_DELAY = 1_200

t.test(
  'a refresh slower than the lock TTL keeps the lock by renewal: still one refresh across replicas',
  async (t) => {
    const redis = await startRedis()
    t.teardown(() => redis.stop())
    const clock = new TestClock()
    const upstream = await startEchoUpstream()
    t.teardown(() => upstream.close())

    // The IdP must know the first replica's redirect URI, so the ports are
    // chosen first; onFreePorts picks again if one is taken before its listen.
    const { idp, urls } = await onFreePorts(2, async (ports) => {
      const publicUrl = `http://127.0.0.1:${ports[0]}`
      const idp = await startDevIdp({
        accessTokenTtl: 60,
        clients: [
          { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`${publicUrl}/auth/callback`] },
        ],
      })
      const apps: FastifyInstance[] = []
      try {
        for (const port of ports) {
          const config = testConfig({
            port,
            issuer: idp.issuer,
            store: redis.url,
            keyPrefix: redis.prefix,
            idpTimeout: 5_000,
            routes: [route('/api/orders', upstream.url)],
          })
          const app = await buildGateway(config, {
            now: clock.now,
            lockTtl: LOCK_TTL,
            stores: await createRedisStores(config, clock.now),
          })
          await listenOn(app, port)
          apps.push(app)
          await app.gatehouse.whenDiscovered()
        }
      } catch (err) {
        for (const app of apps) await app.close()
        await idp.close()
        throw err
      }
      t.teardown(async () => {
        for (const app of apps) await app.close()
        await idp.close()
      })
      return { idp, urls: ports.map((port) => `http://127.0.0.1:${port}`) }
    })
    const { jar } = await login(urls[0]!)
    jar.set(urls[1]!, 'gatehouse', jar.get(urls[0]!, 'gatehouse')!)
    idp.resetStats()
    idp.setTokenEndpointDelay(IDP_DELAY)

    clock.advance(61_000)
    const started = Date.now()
    const responses = await Promise.all(
      Array.from({ length: 60 }, (_, i) => apiCall(jar, `${urls[i % 2]}/api/orders`)),
    )
    t.ok(
      Date.now() - started >= IDP_DELAY,
      `the refresh took longer (${Date.now() - started} ms) than the lock TTL (${LOCK_TTL} ms)`,
    )
    t.same(new Set(responses.map((r) => r.status)), new Set([200]), 'every request succeeded')
    t.equal(idp.stats.refreshGrants, 1, 'one refresh: the renewed lock kept the other replica waiting')
    t.equal(idp.stats.refreshReplays, 0)
    t.equal(
      new Set(upstream.requests.slice(-60).map((r) => r.authorization)).size,
      1,
      'both replicas used the new token',
    )
  },
)
