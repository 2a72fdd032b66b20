import type { Test } from 'tap'
import t from 'tap'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import {
  commandCalls,
  hgetOn,
  probeClient,
  startRedisCluster,
  type TestRedisCluster,
} from '../helpers/redis-topology.js'
import { onceServed, type StormAnswer, startReplicaSet, storm } from '../helpers/replicas.js'

/** Access tokens live a minute of IdP time; the gateways' TestClock crosses expiries at will. */
const TTL_S = 60

/** The one session key on the cluster: the test's user is the only one signed in. */
async function sessionKey(cluster: TestRedisCluster): Promise<string> {
  const keys = new Set<string>()
  for (const node of cluster.nodes) {
    const probe = probeClient(node.port)
    try {
      await probe.connect()
      for (const key of await probe.keys('gh:s:*')) keys.add(key)
    } finally {
      probe.disconnect()
    }
  }
  if (keys.size !== 1) throw new Error(`expected one session key, found ${keys.size}`)
  return [...keys][0]!
}

/** A fresh cluster of 3 masters with a replica each, and three gateways on it whose clock the test moves. */
async function failoverSetup(t: Test) {
  const cluster = await startRedisCluster({ replicas: 1 })
  t.teardown(() => cluster.stop())
  const clock = new TestClock()
  const set = await startReplicaSet({
    store: cluster.url,
    keyPrefix: 'gh:',
    accessTokenTtl: TTL_S,
    now: clock.now,
  })
  t.teardown(() => set.close())
  const key = await sessionKey(cluster)
  const { master, replicas } = await cluster.ownerOf(key)
  return { cluster, clock, set, key, master, replica: replicas[0]! }
}

t.test(
  'the master dies between two refreshes: the next one is stored on the promoted replica, not refused for good',
  async (t) => {
    const { cluster, clock, set, key, master, replica } = await failoverSetup(t)
    t.equal((await apiCall(set.jar, `${set.urls[0]}/api/orders`)).status, 200, 'signed in')

    // No write is in flight when the master dies: nothing but a
    // redirection tells a gateway's connections where its slots went.
    await master.kill()
    await cluster.promoted(replica)
    t.equal(
      (await onceServed(set, set.urls[1]!)).status,
      200,
      'the session is read from the promoted replica',
    )
    clock.advance(TTL_S * 1_000)
    const refreshed = await apiCall(set.jar, `${set.urls[1]}/api/orders`)
    t.equal(refreshed.status, 200, 'the refresh after the failover is answered')
    t.equal(await hgetOn(replica.port, key, 'v'), '1', 'its tokens are on the promoted replica')
    t.equal((await apiCall(set.jar, `${set.urls[2]}/api/orders`)).status, 200, 'the same session works')
    const stats = set.idp.stats
    t.equal(stats.refreshGrants, 1, 'one refresh')
    t.equal(stats.refreshReplays, 0, 'no refresh token replayed')
    t.equal(stats.revokedGrants, 0, 'no grant revoked')
  },
)

t.test(
  'SIGKILL of the master holding the session, in a 32-way storm across expiries: only 200 or 503, then the same session, no replays',
  async (t) => {
    const { cluster, clock, set, key, master, replica } = await failoverSetup(t)
    t.ok(replica, 'the session’s master has a replica')
    t.ok((await commandCalls(master.port, 'WAIT')) >= 1, 'the login’s session write waited for the replica')
    const before = await commandCalls(master.port, 'WAIT')
    clock.advance(TTL_S * 1_000)
    t.equal((await apiCall(set.jar, `${set.urls[0]}/api/orders`)).status, 200, 'a refresh')
    t.equal(set.idp.stats.refreshGrants, 1, 'one refresh')
    t.ok((await commandCalls(master.port, 'WAIT')) > before, 'its rotated tokens waited for the replica')
    t.equal(
      await hgetOn(replica.port, key, 'v'),
      '1',
      'and the replica holds them the moment the refresh is answered',
    )
    set.idp.resetStats()

    // Phases, each ended by enough 200s: warm up; cross an expiry; cross
    // another and kill the session's master at once, so its refresh meets
    // the failover; recover; cross two more expiries on the promoted replica.
    const quota = [100, 100, 0, 150, 150, 150]
    let phase = 0
    let ok = 0
    let killedAt = 0
    let promotedAt = 0
    let recovered = false
    const readiness: number[] = []
    const hardStop = Date.now() + 60_000
    const killing: Promise<void>[] = []
    const onAnswer = (answer: StormAnswer) => {
      if (answer.status === 200) ok++
      if (phase === 2) {
        if (recovered && ok >= 100) {
          phase = 3
          ok = 0
          clock.advance(TTL_S * 1_000)
        }
        return
      }
      if (phase >= quota.length || ok < quota[phase]!) return
      ok = 0
      phase++
      if (phase === 1 || phase === 4 || phase === 5) clock.advance(TTL_S * 1_000)
      if (phase === 2) {
        clock.advance(TTL_S * 1_000)
        killedAt = Date.now()
        killing.push(
          (async () => {
            await master.kill()
            await cluster.promoted(replica)
            promotedAt = Date.now()
            // /readyz reports the outage and the recovery by itself.
            for (;;) {
              const status = (await fetch(`${set.urls[0]}/readyz`)).status
              readiness.push(status)
              if (status === 200 || Date.now() > hardStop) break
              await new Promise((r) => setTimeout(r, 100))
            }
            recovered = true
            ok = 0
          })(),
        )
      }
    }
    const answers = await storm(set, 32, () => phase >= quota.length || Date.now() > hardStop, onAnswer)
    await Promise.all(killing)

    t.ok(phase >= quota.length, `the storm ran through every phase (${answers.length} requests)`)
    t.equal((await cluster.ownerOf(key)).master, replica, 'the replica now serves the session')
    const byStatus = new Map<number, number>()
    for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1)
    t.same(
      [...byStatus.keys()].filter((s) => s !== 200 && s !== 503),
      [],
      `only 200 and 503 (${JSON.stringify(Object.fromEntries(byStatus))})`,
    )
    const errors = answers.filter((a) => a.status !== 200)
    t.ok(
      errors.every((a) => a.retryAfter),
      'every 503 says when to retry',
    )
    if (errors.length > 0) {
      const first = Math.min(...errors.map((a) => a.at)) - killedAt
      const last = Math.max(...errors.map((a) => a.at)) - killedAt
      t.ok(first >= 0, `no error before the kill (first ${first} ms after it)`)
      t.ok(
        last <= 15_000,
        `errors confined to the failover window (last ${last} ms after the kill, promoted after ${promotedAt - killedAt} ms)`,
      )
    }
    t.ok(readiness.length > 0 && readiness.at(-1) === 200, `/readyz back to 200 (${readiness.join(',')})`)
    t.equal((await apiCall(set.jar, `${set.urls[1]}/api/orders`)).status, 200, 'the same session works after')
    const stats = set.idp.stats
    t.equal(stats.refreshReplays, 0, 'zero refresh tokens replayed')
    t.equal(stats.revokedGrants, 0, 'zero grants revoked')
    t.ok(
      stats.refreshGrants >= 5 && stats.refreshGrants <= 6,
      `${stats.refreshGrants} refreshes for 5 expiries: one each, at most one more`,
    )
  },
)
