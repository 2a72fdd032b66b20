/**
 * docs/deployment.md gives the ACL the gateway's Redis user needs. Until
 * 2026-12-07 it named only `EVAL` and `EVALSHA` and "the hash, sorted-set,
 * string and pub/sub commands", leaving out `ROLE`, `WAIT`, `INFO`,
 * `CLIENT` and the commands the scripts run, each of which Redis checks;
 * an operator who wrote that ACL got 503s at the first sign-in. This test
 * takes the ACL from the document itself, so the two cannot drift.
 */
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { CLUSTER_CACHE_OFF } from '../../src/server/redis-stores.js'
import { awaitedLog } from '../helpers/awaited-log.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { ACL_PASSWORD, ACL_USER, documentedAclRules, startRedisWithAclUser } from '../helpers/redis.js'
import { startRedisCluster, startRedisSentinel } from '../helpers/redis-topology.js'
import { startReplicaSet } from '../helpers/replicas.js'

/**
 * Signs in, storms a refresh across two instances, reads `/readyz`, signs
 * out and in again on `store`, whose user has the documented ACL on every
 * node `admins` reach; nothing may be refused.
 */
async function servedUnderTheAcl(
  t: Test,
  setup: { readonly store: string; readonly keyPrefix: string; readonly admins: readonly Redis[] },
) {
  await Promise.all(setup.admins.map((admin) => admin.call('ACL', 'LOG', 'RESET')))
  const log = awaitedLog()
  const clock = new TestClock()
  const set = await startReplicaSet({
    store: setup.store,
    keyPrefix: setup.keyPrefix,
    accessTokenTtl: 60,
    now: clock.now,
    count: 2,
    logStream: log.logStream,
  })
  t.teardown(() => set.close())
  const [first, second] = set.urls as [string, string]

  clock.advance(61_000)
  const storm = (url: string) =>
    Promise.all(Array.from({ length: 10 }, () => apiCall(set.jar, `${url}/api/orders`)))
  const answers = (await Promise.all([storm(first), storm(second)])).flat()
  t.same(new Set(answers.map((a) => a.status)), new Set([200]), 'a refresh storm at two instances is served')
  t.equal(set.idp.stats.refreshGrants, 1, 'with one redemption')

  for (const url of set.urls) {
    const ready = await fetch(`${url}/readyz`)
    t.equal(ready.status, 200, `${url}/readyz answers 200`)
    t.equal(((await ready.json()) as { status: string }).status, 'ready', 'ready, not degraded')
  }

  const { logoutUrl } = (await apiCall(set.jar, `${second}/auth/user`)).json<{ logoutUrl: string }>()
  const logout = await jarFetch(set.jar, `${second}${logoutUrl}`, { headers: { accept: 'text/html' } })
  t.ok(logout.status < 400, `a sign-out is carried out (${logout.status})`)
  t.equal((await apiCall(set.jar, `${first}/api/orders`)).status, 401, 'and the session is over')
  // The rate limit's script reads the window's PTTL from a client's second request on.
  t.equal((await login(first)).callback.status, 302, 'a second sign-in from the same address works')

  for (const admin of setup.admins) {
    t.same(await admin.call('ACL', 'LOG'), [], `Redis (${admin.options.port}) refused the gateway nothing`)
  }
  t.same(
    log.lines
      // A Cluster has no local cache whatever the ACL, and says so at start.
      .filter((line) => line.reason !== CLUSTER_CACHE_OFF)
      .map((line) => line.code)
      .filter((code) =>
        /^GATEHOUSE_(STORE_(SCRIPTING|KEYS)_REFUSED|STORE_EVICTION_UNCHECKED|SESSION_CACHE_OFF)$/.test(
          String(code),
        ),
      ),
    [],
    'and no line says it did',
  )
}

/** `ACL_USER` with `rules` on each of `nodes`, through admin connections closed when `t` ends. */
async function aclUserOn(t: Test, nodes: readonly { readonly port: number }[], rules: readonly string[]) {
  const admins = nodes.map((node) => new Redis(node.port, '127.0.0.1'))
  t.teardown(() => {
    for (const admin of admins) admin.disconnect()
  })
  for (const admin of admins)
    await admin.call('ACL', 'SETUSER', ACL_USER, 'reset', 'on', `>${ACL_PASSWORD}`, ...rules)
  return admins
}

t.test('the ACL deployment.md gives serves sign-in, refresh, readiness and sign-out', async (t) => {
  const { redis, admin, store } = await startRedisWithAclUser(t, ['~*', '&*', '+@all'])
  await admin.call(
    'ACL',
    'SETUSER',
    ACL_USER,
    'reset',
    'on',
    `>${ACL_PASSWORD}`,
    ...documentedAclRules(redis.prefix),
  )
  await servedUnderTheAcl(t, { store, keyPrefix: redis.prefix, admins: [admin] })
})

// ACLs are each node's own (a Cluster does not spread them), so the user
// is made on every node, replicas too: a failover makes one a master.
t.test("on a Cluster, with the document's additions for one, too", async (t) => {
  const cluster = await startRedisCluster({ replicas: 1 })
  t.teardown(() => cluster.stop())
  const keyPrefix = 'gh-acl-cluster:'
  const admins = await aclUserOn(t, cluster.nodes, documentedAclRules(keyPrefix, { cluster: true }))
  const store = cluster.url.replace('redis+cluster://', `redis+cluster://${ACL_USER}:${ACL_PASSWORD}@`)
  await servedUnderTheAcl(t, { store, keyPrefix, admins })
})

// Sentinels are asked without the user; the primary and its replica each
// hold their own ACL.
t.test('behind Sentinel, with the user on the primary and its replica', async (t) => {
  const topology = await startRedisSentinel()
  t.teardown(() => topology.stop())
  const keyPrefix = 'gh-acl-sentinel:'
  const admins = await aclUserOn(t, [topology.primary, topology.replica], documentedAclRules(keyPrefix))
  const store = topology.url.replace('redis+sentinel://', `redis+sentinel://${ACL_USER}:${ACL_PASSWORD}@`)
  await servedUnderTheAcl(t, { store, keyPrefix, admins })
})
