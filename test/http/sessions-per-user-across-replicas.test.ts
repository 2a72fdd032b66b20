/**
 * `session.maxPerUser` across replicas sharing Redis: sign-ins of one user
 * at once on two instances must leave no more than the bound, and must not
 * end a session that was just made while fewer than the bound were made
 * after it (a record another sign-in has not written yet is no reason to
 * end anything). On one Redis, and on a Cluster, whose indexes and
 * records are on several masters.
 */
import type { Test } from 'tap'
import t from 'tap'
import { apiCall } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startRedisCluster } from '../helpers/redis-topology.js'
import { type PendingSignIn, type ReplicaSet, signInAt, startReplicaSet } from '../helpers/replicas.js'

const MAX = 3
const BURST = 10

/** The bound's figures summed over the replicas, by result. */
async function overBound(set: ReplicaSet, result: 'ended' | 'unchecked'): Promise<number> {
  let sum = 0
  for (const app of set.apps) {
    const text = await app.gatehouse.metrics.registry.metrics()
    const found = new RegExp(
      `gatehouse_sessions_over_bound_total\\{result="${result}",idp="default"\\} (\\d+)`,
    ).exec(text)
    sum += Number(found?.[1] ?? 0)
  }
  return sum
}

/**
 * `count` browsers of `user` each sign in at a replica in turn, the IdP's
 * part first; then every callback is sent at once.
 */
async function atOnce(t: Test, set: ReplicaSet, user: string, count: number) {
  const pending = await Promise.all(
    Array.from({ length: count }, (_, i) => signInAt(set, i % set.urls.length, user)),
  )
  const answers = await Promise.all(pending.map((p) => p.complete()))
  t.same(
    answers.map((a) => a.status),
    answers.map(() => 302),
    `${count} sign-ins at once on ${set.urls.length} replicas all landed`,
  )
  return pending
}

/** Which of the browsers' sessions are live, each asked of the replica it signed in at. */
async function live(browsers: readonly PendingSignIn[]) {
  return Promise.all(
    browsers.map(async ({ jar, at }) => (await apiCall(jar, `${at}/auth/user`)).status === 200),
  )
}

/** The test, on the store at `store`, under `keyPrefix`. */
async function boundAcrossReplicas(t: Test, store: string, keyPrefix: string) {
  const set = await startReplicaSet({
    store,
    keyPrefix,
    accessTokenTtl: 60,
    count: 2,
    oneOrigin: true,
    maxPerUser: MAX,
  })
  t.teardown(() => set.close())
  const sessions = set.apps[0]!.gatehouse.stores.sessions

  const first = await signInAt(set, 0, 'uma')
  t.equal((await first.complete()).status, 302, 'uma signs in once')
  const pair = await atOnce(t, set, 'uma', 2)
  t.same(await live([first, ...pair]), [true, true, true], 'two more at once: at the bound, none ended')
  t.equal((await sessions.idsBySub('uma')).length, MAX)
  t.equal(await overBound(set, 'ended'), 0, 'nothing counted as ended')

  let survivors = [first, ...pair]
  let ended = 0
  for (let round = 1; round <= 3; round++) {
    const burst = await atOnce(t, set, 'uma', BURST)
    ended += survivors.length + BURST - MAX
    t.same(
      await live(survivors),
      survivors.map(() => false),
      `round ${round}: every older session ended`,
    )
    const now = await live(burst)
    t.equal(now.filter(Boolean).length, MAX, `round ${round}: exactly ${MAX} of the burst live on`)
    t.equal((await sessions.idsBySub('uma')).length, MAX, `round ${round}: the store holds ${MAX}`)
    t.equal(await overBound(set, 'ended'), ended, `round ${round}: each ended once, counted once (${ended})`)
    survivors = burst.filter((_, i) => now[i])
  }
  t.equal(await overBound(set, 'unchecked'), 0, 'the store answered every check')
}

t.test('sign-ins at once on two replicas sharing Redis leave exactly the bound', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'needs a redis-server of its own')
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  await boundAcrossReplicas(t, redis.url, redis.prefix)
})

t.test('and on a Redis Cluster, the user’s index and sessions on several masters', async (t) => {
  const cluster = await startRedisCluster()
  t.teardown(() => cluster.stop())
  await boundAcrossReplicas(t, cluster.url, 'bound:')
})
