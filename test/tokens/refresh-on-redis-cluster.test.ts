import t from 'tap'
import { TestClock } from '../helpers/gateway.js'
import { startRedisCluster } from '../helpers/redis-topology.js'
import { startReplicaSet, storm } from '../helpers/replicas.js'

const TTL_S = 60
const EXPIRIES = 5

const cluster = await startRedisCluster()
t.teardown(() => cluster.stop())

t.test(
  'three replicas on a 3-master cluster: a 64-way storm over five lifetimes, all 200, no replays',
  async (t) => {
    const clock = new TestClock()
    const set = await startReplicaSet({
      store: cluster.url,
      keyPrefix: 'gh:',
      accessTokenTtl: TTL_S,
      now: clock.now,
    })
    t.teardown(() => set.close())

    // Each phase ends after enough answers, then the gateways' clock crosses
    // an access-token expiry: every replica finds the token stale at once.
    let crossed = 0
    let answered = 0
    const hardStop = Date.now() + 60_000
    const answers = await storm(
      set,
      64,
      () => crossed > EXPIRIES || Date.now() > hardStop,
      () => {
        if (++answered % 250 === 0) {
          crossed++
          clock.advance(TTL_S * 1_000)
        }
      },
    )
    t.ok(crossed > EXPIRIES, `crossed ${EXPIRIES} expiries in ${answers.length} requests`)
    const failures = answers.filter((a) => a.status !== 200)
    t.same(failures.length, 0, `every request answered 200 (${failures.length} did not)`)
    const stats = set.idp.stats
    t.equal(stats.refreshReplays, 0, 'zero refresh tokens replayed')
    t.equal(stats.revokedGrants, 0, 'zero grants revoked')
    t.ok(
      stats.refreshGrants >= EXPIRIES && stats.refreshGrants <= EXPIRIES + 1,
      `${stats.refreshGrants} refreshes for ${EXPIRIES} expiries: one each, at most one more`,
    )
    const metrics = await set.apps[0]!.gatehouse.metrics.registry.metrics()
    t.match(metrics, /^gatehouse_session_cache_enabled 0$/m, 'the local session cache says it is off')
  },
)
