import t from 'tap'
import { startDevIdp } from '../../dev/idp.js'
import { startEchoUpstream } from '../../dev/upstream.js'
import { createRedisStores } from '../../src/server/redis-stores.js'
import { RedisSessionStore } from '../../src/session/redis-store.js'
import {
  CLIENT_ID,
  CLIENT_SECRET,
  route,
  startGateway,
  TestClock,
  type TestGateway,
  testConfig,
} from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { onFreePorts } from '../helpers/ports.js'
import { startRedis } from '../helpers/redis.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

/**
 * The hazard a per-instance session copy brings: replica B still holds the
 * session as it was before replica A refreshed it, because A's change has
 * not reached B yet. B must not redeem the refresh token in that copy: the
 * IdP rotated it, and a replay revokes the user's whole grant.
 */
t.test('a replica whose copy predates a refresh elsewhere uses the new tokens, never replays', async (t) => {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  // B hears Redis's invalidations through a relay the test can silence.
  const tracking = await startTcpProxy(redis.url)
  t.teardown(() => tracking.close())

  const clock = new TestClock()
  let copyOfB: RedisSessionStore | undefined
  const replica = async (issuer: string, port: number, silenced: boolean) => {
    const config = testConfig({
      port,
      issuer,
      store: redis.url,
      keyPrefix: `${redis.prefix}past-cache:`,
      routes: [route('/api/orders', upstream.url)],
    })
    const stores = await createRedisStores(config, clock.now)
    if (silenced) {
      const sessions = new RedisSessionStore({
        client: stores.redis!,
        keyPrefix: config.session.keyPrefix,
        secrets: config.session.secrets,
        idleTimeoutMs: config.session.idleTimeout,
        now: clock.now,
        cache: { url: tracking.url, maxEntries: 100, maxStalenessMs: 600_000 },
      })
      await sessions.whenReady()
      copyOfB = sessions
      const original = stores.sessions
      Object.assign(stores, { sessions })
      await original.close()
      const close = stores.close.bind(stores)
      Object.assign(stores, { close: () => Promise.all([sessions.close(), close()]) })
    }
    return startGateway(config, { stores, now: clock.now })
  }
  // The IdP must know both replicas' redirect URIs, so the ports are chosen
  // first; onFreePorts picks again if one is taken before its listen.
  const { idp, a, b } = await onFreePorts(2, async ([portA, portB]) => {
    const idp = await startDevIdp({
      accessTokenTtl: 120,
      clients: [
        {
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          redirectUris: [
            `http://127.0.0.1:${portA}/auth/callback`,
            `http://127.0.0.1:${portB}/auth/callback`,
          ],
        },
      ],
    })
    const started: TestGateway[] = []
    try {
      started.push(await replica(idp.issuer, portA!, false))
      started.push(await replica(idp.issuer, portB!, true))
      return { idp, a: started[0]!, b: started[1]! }
    } catch (err) {
      for (const gateway of started) await gateway.close()
      await idp.close()
      throw err
    }
  })
  t.teardown(async () => {
    await a.close()
    await b.close()
    await idp.close()
  })

  const { jar } = await login(a.url)
  jar.set(b.url, 'gatehouse', jar.get(a.url, 'gatehouse')!)
  // The login's own invalidation must be in, or B's first read is not kept.
  await copyOfB!.cache!.sync()
  t.equal((await apiCall(jar, `${b.url}/api/orders`)).status, 200, 'B reads the session and keeps it')
  t.equal(copyOfB?.cache?.size, 1)
  idp.resetStats()

  tracking.blackhole()
  // Past the refresh margin, short of the idle touch (which would read Redis anyway).
  clock.advance(118_000)
  t.equal((await apiCall(jar, `${a.url}/api/orders`)).status, 200, 'A refreshes the expired token')
  t.equal(idp.stats.refreshGrants, 1)
  const refreshedBearer = upstream.requests.at(-1)!.authorization

  const late = await apiCall(jar, `${b.url}/api/orders`)
  t.equal(copyOfB?.cache?.size, 1, "B's copy was never invalidated")
  t.equal(late.status, 200, 'B, whose copy still holds the old refresh token, succeeds')
  t.equal(upstream.requests.at(-1)!.authorization, refreshedBearer, "with A's new access token")
  t.equal(idp.stats.refreshGrants, 1, 'and without refreshing again')
  t.equal(idp.stats.refreshReplays, 0, 'no refresh token was replayed')
  t.equal(idp.stats.revokedGrants, 0, 'the grant is intact')
  tracking.release()
})
