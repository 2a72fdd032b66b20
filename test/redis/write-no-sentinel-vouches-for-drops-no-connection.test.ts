import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { roleOf, startRedisSentinel } from '../helpers/redis-topology.js'
import { LogLines } from '../helpers/reloadable.js'
import { startReplicaSet } from '../helpers/replicas.js'
import { pollUntil } from '../helpers/within.js'

// A primary without a replica counts a write only while a sentinel names
// it (old-primary-woken-after-failover-loses-no-refresh.test.ts). With no
// sentinel answering, the write was refused, as documented, but the
// connections were dropped too, as for a primary the sentinels had replaced:
// their reconnect needs a sentinel to find any primary, so one sign-in or
// refresh left every read, /readyz included, answering 503 until a sentinel
// came back, although the primary was fine and had answered them before.
t.test(
  'a write no sentinel can vouch for is refused, and the primary keeps serving what it served',
  async (t) => {
    const redis = await startRedisSentinel()
    t.teardown(() => redis.stop())
    const log = new LogLines()
    const set = await startReplicaSet({
      logStream: log.stream,
      store: redis.url,
      keyPrefix: 'gh:',
      accessTokenTtl: 60,
      now: new TestClock().now,
      count: 1,
    })
    t.teardown(() => set.close())
    const url = set.urls[0]!
    const carol = await login(url, { user: 'carol' })
    t.equal(carol.callback.status, 302, 'a second user signed in')

    await redis.replica.kill()
    await pollUntil(async () => (await roleOf(redis.primary.port)) === 'master:0', 20_000)
    await redis.sentinel.kill()
    t.equal((await jarFetch(new CookieJar(), `${url}/readyz`)).status, 200, 'ready: the primary answers')

    const refused = await login(url, { user: 'bob' })
    t.equal(refused.callback.status, 503, 'a sign-in no sentinel vouches for is refused (docs/deployment.md)')
    // Its line said only `cause: "Error"`, as for any Redis failure without
    // a code: nothing told the refusal from a dead Redis.
    t.match(
      log.lines.filter((l) => l.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE'),
      [{ msg: 'login callback refused', cause: /^no sentinel answered whether the primary/ }],
      'the line says why it was refused',
    )

    t.equal((await apiCall(carol.jar, `${url}/auth/user`)).status, 200, 'a session is still read')
    t.equal((await apiCall(set.jar, `${url}/api/orders`)).status, 200, 'and served')
    t.equal((await jarFetch(new CookieJar(), `${url}/readyz`)).status, 200, 'and the gateway is still ready')
  },
)
