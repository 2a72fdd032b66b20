/**
 * A Redis ACL that allows `SET` and `GET` but not `EVAL` and `EVALSHA`
 * (`-@scripting`, which some managed services and hardening guides apply)
 * let the refresh lock be taken, with a plain `SET NX`, and then neither
 * renewed nor given back, nor the rotated token written: each of those is
 * a Lua script. The lock lapsed after its lifetime, the next instance took
 * it and redeemed the refresh token the first had already spent, and the
 * IdP answered that replay by revoking the grant (RFC 9700 §4.14.2).
 */
import t, { type Test } from 'tap'
import { awaitedLog } from '../helpers/awaited-log.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { startRedisWithAclUser, ACL_USER as USER } from '../helpers/redis.js'
import { startReplicaSet } from '../helpers/replicas.js'
import { pollUntil } from '../helpers/within.js'

/**
 * Two replicas sharing a redis-server of their own as an ACL user that may
 * run everything until the test takes something away (`admin`), on a
 * hand-moved clock, with a browser signed in. The lock lives
 * oidc.timeout + lateAnswerWait + 5 s: 7 s.
 */
async function twoReplicasAsAclUser(t: Test, logStream?: { write(line: string): void }) {
  const { redis, admin, store } = await startRedisWithAclUser(t, ['~*', '&*', '+@all'])
  const clock = new TestClock()
  const set = await startReplicaSet({
    store,
    keyPrefix: redis.prefix,
    accessTokenTtl: 60,
    now: clock.now,
    count: 2,
    oidc: { timeout: 1_000, lateAnswerWait: 1_000 },
    ...(logStream === undefined ? {} : { logStream }),
  })
  t.teardown(() => set.close())
  const [first, second] = set.urls as [string, string]
  return { redis, admin, clock, set, first, second }
}

t.test('an ACL without scripting: no refresh token is redeemed, twice or at all', async (t) => {
  const log = awaitedLog()
  const { redis, admin, clock, set, first, second } = await twoReplicasAsAclUser(t, log.logStream)

  await admin.call('ACL', 'SETUSER', USER, '-@scripting')
  clock.advance(61_000)
  const storm = async (url: string) =>
    Promise.all(Array.from({ length: 10 }, () => apiCall(set.jar, `${url}/api/orders`)))
  const answers = (await Promise.all([storm(first), storm(second)])).flat()
  t.same(new Set(answers.map((a) => a.status)), new Set([503]), 'every request of the storm answers 503')
  t.ok(
    answers.every((a) => Number(a.headers.get('retry-after')) >= 1),
    'each with Retry-After',
  )
  // Past the lock's lifetime: a lock taken and never given back has lapsed.
  await pollUntil(async () => (await admin.keys(`${redis.prefix}lock:*`)).length === 0, 20_000)
  const again = (await Promise.all([storm(second), storm(first)])).flat()
  t.same(new Set(again.map((a) => a.status)), new Set([503]), 'so does a storm after it')
  t.equal(set.idp.stats.refreshReplays, 0, 'no spent refresh token is presented')
  t.equal(set.idp.stats.revokedGrants, 0, 'the grant stands')
  t.equal(set.idp.stats.refreshGrants, 0, 'no refresh token is redeemed whose rotation could not be stored')

  await admin.call('ACL', 'SETUSER', USER, '+@scripting')
  t.equal((await apiCall(set.jar, `${second}/api/orders`)).status, 200, 'served once the ACL allows scripts')
  t.equal((await apiCall(set.jar, `${first}/api/orders`)).status, 200, 'at every replica')
  t.equal(set.idp.stats.refreshGrants, 1, 'with one redemption')
  t.equal(set.idp.stats.refreshReplays, 0, 'and no replay')
  t.notOk(
    log.lines.some((line) => /refresh_token|access_token|an-acl-password/.test(JSON.stringify(line))),
    'no token or password in the log',
  )
})

/**
 * The ACL changed while a refresh was at the IdP: the rotated tokens could
 * not be written, and the lock could not be renewed (a script), so it
 * lapsed while its holder still offered them to the store. Once the ACL
 * allowed scripts again, the next instance to take the lock redeemed the
 * spent refresh token before the holder's write landed.
 */
t.test(
  'an ACL withdrawn mid-refresh: the holder keeps the lock until its rotated tokens are stored',
  async (t) => {
    // The lock is renewed every 2.3 s.
    const { redis, admin, clock, set, first, second } = await twoReplicasAsAclUser(t)
    clock.advance(61_000)
    set.idp.holdTokenAnswers(async () => {
      await admin.call('ACL', 'SETUSER', USER, '-@scripting')
    })
    const refused = await apiCall(set.jar, `${first}/api/orders`)
    set.idp.holdTokenAnswers()
    t.equal(refused.status, 503, 'the request whose rotated tokens could not be stored answers 503')
    t.equal(set.idp.stats.refreshGrants, 1, 'the IdP rotated the refresh token')

    const [lock] = await admin.keys(`${redis.prefix}lock:*`)
    t.ok(lock, 'the holder took the lock')
    // Three renewals seen (the TTL going back up) is longer than the lock's
    // 7 s lifetime: a lock nobody renews is gone before then.
    let renewals = 0
    let last = Number.POSITIVE_INFINITY
    await pollUntil(async () => {
      const ttl = await admin.pttl(lock!)
      if (ttl < 0) return true
      if (ttl > last) renewals++
      last = ttl
      return renewals >= 3
    }, 20_000)
    t.ok(await admin.exists(lock!), 'the lock is kept past its lifetime, renewed without a script')

    for (const url of [second, first])
      t.equal((await apiCall(set.jar, `${url}/api/orders`)).status, 503, `${url} answers 503 meanwhile`)
    await admin.call('ACL', 'SETUSER', USER, '+@scripting')
    t.equal(
      (await apiCall(set.jar, `${second}/api/orders`)).status,
      200,
      'the other replica serves once scripts run',
    )
    t.equal((await apiCall(set.jar, `${first}/api/orders`)).status, 200, 'and the holder')
    t.equal(set.idp.stats.refreshReplays, 0, 'no spent refresh token was presented')
    t.equal(set.idp.stats.revokedGrants, 0, 'the grant stands')
    t.equal(
      set.idp.stats.refreshGrants,
      1,
      'one redemption: the rotated tokens were stored, not redeemed anew',
    )
  },
)
