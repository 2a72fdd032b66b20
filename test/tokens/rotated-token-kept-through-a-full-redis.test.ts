/**
 * A Redis run as the docs say, `maxmemory-policy noeviction`, that reaches
 * its `maxmemory` refuses writes with `-OOM command not allowed`, and may
 * stay full for as long as an operator takes to notice. When that happens
 * after the IdP has rotated the refresh token and before the gateway has
 * stored it, the new token exists only in the memory of the instance that
 * redeemed it (RFC 9700 §4.14.2). The write used to be retried for the
 * lock's lifetime and then given up with the lock: the session kept the
 * spent token, and the first refresh once Redis had room again presented
 * it, which the IdP took as a replay and answered by revoking the grant.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { awaitedLog } from '../helpers/awaited-log.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startReplicaSet } from '../helpers/replicas.js'
import { until } from '../helpers/websocket.js'

t.test('a rotated refresh token that a full Redis refuses is stored once it has room', async (t) => {
  const redis = await startRedis({ args: ['--maxmemory-policy', 'noeviction'] })
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const log = awaitedLog()
  const clock = new TestClock()
  // The lock lives oidc.timeout + lateAnswerWait + 5 s: 7 s.
  const set = await startReplicaSet({
    store: redis.url,
    keyPrefix: redis.prefix,
    accessTokenTtl: 60,
    now: clock.now,
    count: 2,
    oidc: { timeout: 1_000, lateAnswerWait: 1_000 },
    logStream: log.logStream,
  })
  t.teardown(() => set.close())
  const [first, second] = set.urls as [string, string]
  clock.advance(61_000)
  // The IdP has rotated the refresh token; before its answer leaves, Redis is full.
  set.idp.holdTokenAnswers(async () => {
    await admin.config('SET', 'maxmemory', '1')
  })
  const refused = await apiCall(set.jar, `${first}/api/orders`)
  set.idp.holdTokenAnswers()
  t.equal(refused.status, 503, 'the request whose refresh could not be stored answers 503')
  t.ok(Number(refused.headers.get('retry-after')) >= 1, 'with Retry-After')
  t.equal(refused.json().error, 'session_store_unavailable')
  t.equal(set.idp.stats.refreshGrants, 1, 'the IdP rotated the refresh token')

  // Still full, past the lock's 7 s: no instance redeems the spent token, none signs the user out.
  clock.advance(8_000)
  for (const url of [first, second]) {
    const answer = await apiCall(set.jar, `${url}/api/orders`)
    t.equal(answer.status, 503, `${url} answers 503 while Redis is full`)
  }
  t.equal(set.idp.stats.refreshReplays, 0, 'no spent refresh token presented while Redis is full')

  await admin.config('SET', 'maxmemory', '0')
  t.ok(
    await until(async () => (await apiCall(set.jar, `${first}/api/orders`)).status === 200),
    'the session is served once Redis has room',
  )
  t.equal((await apiCall(set.jar, `${second}/api/orders`)).status, 200, 'at every replica')
  t.equal(set.idp.stats.refreshReplays, 0, 'no spent refresh token was presented again')
  t.equal(set.idp.stats.revokedGrants, 0, 'and the grant stands')
  t.equal(set.idp.stats.refreshGrants, 1, 'one redemption: the rotated token was stored, not redeemed anew')

  const outage = log.lines.find((line) => line.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE')
  t.match(outage, { cause: /OOM/ }, "the 503's log line names Redis's OOM")
  t.notOk(
    log.lines.some((line) => /refresh_token|access_token/.test(JSON.stringify(line))),
    'no token in the log',
  )
})

/**
 * So is the rotated refresh token of a 200 the gateway refused (a negative
 * `expires_in` here): it was kept best effort, and lost to a full Redis the
 * same way.
 */
t.test(
  "a refused 200's rotated refresh token that a full Redis refuses is stored once it has room",
  async (t) => {
    const redis = await startRedis({ args: ['--maxmemory-policy', 'noeviction'] })
    t.teardown(() => redis.stop())
    const admin = new Redis(redis.url)
    t.teardown(() => admin.disconnect())
    const clock = new TestClock()
    const set = await startReplicaSet({
      store: redis.url,
      keyPrefix: redis.prefix,
      accessTokenTtl: 60,
      now: clock.now,
      count: 2,
      oidc: { timeout: 1_000, lateAnswerWait: 1_000 },
      idp: { quirks: { negativeExpiresInOnRefresh: true } },
    })
    t.teardown(() => set.close())
    const [first, second] = set.urls as [string, string]
    clock.advance(61_000)
    set.idp.holdTokenAnswers(async () => {
      await admin.config('SET', 'maxmemory', '1')
    })
    t.equal((await apiCall(set.jar, `${first}/api/orders`)).status, 503, 'the answer is refused')
    set.idp.holdTokenAnswers()
    clock.advance(61_000)
    for (const url of [first, second])
      t.equal(
        (await apiCall(set.jar, `${url}/api/orders`)).status,
        503,
        `${url} answers 503 while Redis is full`,
      )
    await admin.config('SET', 'maxmemory', '0')
    // The next redemption, once the kept token is stored, presents that one.
    t.ok(
      await until(async () => {
        clock.advance(61_000)
        await apiCall(set.jar, `${second}/api/orders`)
        return set.idp.stats.refreshGrants + set.idp.stats.refreshReplays >= 2
      }),
      'the IdP is asked again once Redis has room',
    )
    t.equal(set.idp.stats.refreshReplays, 0, 'with the rotated token, not the spent one')
    t.equal(set.idp.stats.revokedGrants, 0, 'and the grant stands')
    t.equal((await apiCall(set.jar, `${first}/auth/user`)).status, 200, 'the session with it')
  },
)
