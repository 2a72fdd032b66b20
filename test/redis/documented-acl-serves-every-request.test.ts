/**
 * docs/deployment.md gives the ACL the gateway's Redis user needs. Until
 * 2026-12-07 it named only `EVAL` and `EVALSHA` and "the hash, sorted-set,
 * string and pub/sub commands", leaving out `ROLE`, `WAIT`, `INFO`,
 * `CLIENT` and the commands the scripts run, each of which Redis checks;
 * an operator who wrote that ACL got 503s at the first sign-in. This test
 * takes the ACL from the document itself, so the two cannot drift.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { awaitedLog } from '../helpers/awaited-log.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { ACL_USER, startRedisWithAclUser } from '../helpers/redis.js'
import { startReplicaSet } from '../helpers/replicas.js'

/** The rules of deployment.md's `ACL SETUSER` line, for `prefix` in place of the default one. */
function documentedRules(prefix: string): string[] {
  const doc = readFileSync(new URL('../../docs/deployment.md', import.meta.url), 'utf8')
  const line = doc.split('\n').find((l) => l.startsWith(`ACL SETUSER ${ACL_USER} `))
  if (line === undefined) throw new Error('docs/deployment.md gives no ACL SETUSER line')
  return line
    .split(' ')
    .slice(3)
    .filter((rule) => rule !== 'on' && !rule.startsWith('>'))
    .map((rule) => rule.replace('gatehouse:', prefix))
}

t.test('the ACL deployment.md gives serves sign-in, refresh, readiness and sign-out', async (t) => {
  const { redis, admin, store } = await startRedisWithAclUser(t, ['~*', '&*', '+@all'])
  await admin.call(
    'ACL',
    'SETUSER',
    ACL_USER,
    'reset',
    'on',
    '>an-acl-password',
    ...documentedRules(redis.prefix),
  )
  await admin.call('ACL', 'LOG', 'RESET')
  const log = awaitedLog()
  const clock = new TestClock()
  const set = await startReplicaSet({
    store,
    keyPrefix: redis.prefix,
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

  t.same(await admin.call('ACL', 'LOG'), [], 'Redis refused the gateway nothing')
  t.same(
    log.lines
      .map((line) => line.code)
      .filter((code) =>
        /^GATEHOUSE_(STORE_(SCRIPTING|KEYS)_REFUSED|STORE_EVICTION_UNCHECKED|SESSION_CACHE_OFF)$/.test(
          String(code),
        ),
      ),
    [],
    'and no line says it did',
  )
})
