/**
 * The answer to a refresh that timed out can come while Redis is away,
 * and Redis can stay away longer than the refresh lock lives
 * (`oidc.timeout` + `oidc.lateAnswerWait` + 5 s): a Sentinel's default
 * `down-after-milliseconds` alone is 30 s. The rotated refresh token in
 * that answer exists nowhere else (RFC 9700 §4.14.2), and no request
 * waits on its write: giving it up when the lock's lifetime ran out left
 * the session with the spent token, whose next redemption the IdP
 * answered by revoking the grant.
 */
import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startReplicaSet } from '../helpers/replicas.js'
import { until } from '../helpers/websocket.js'

t.test('a late answer that arrives during a store outage longer than the lock is still stored', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const clock = new TestClock()
  // lateAnswerWait 1 s: the lock lives 0.3 + 1 + 5 = 6.3 s.
  const set = await startReplicaSet({
    store: redis.url,
    keyPrefix: redis.prefix,
    accessTokenTtl: 60,
    now: clock.now,
    count: 2,
    oidc: { timeout: 300, lateAnswerWait: 1_000 },
  })
  t.teardown(() => set.close())
  const [first, second] = set.urls as [string, string]
  clock.advance(61_000)
  set.idp.setTokenAnswerDelay(900)
  t.equal((await apiCall(set.jar, `${first}/api/orders`)).status, 503, 'the refresh times out')
  await redis.kill()
  // The answer (900 ms) comes while Redis is down; the outage is the fault
  // under test, so it is a length of time, longer than the lock's 6.3 s.
  await delay(8_000)
  await redis.restart()
  set.idp.setTokenAnswerDelay(0)
  clock.advance(6_000)
  // The replica that awaits the answer says so at once until it is stored.
  await until(async () => (await apiCall(set.jar, `${first}/api/orders`)).status !== 503)
  t.equal((await apiCall(set.jar, `${first}/api/orders`)).status, 200, 'the session lives on the late tokens')
  t.equal((await apiCall(set.jar, `${second}/api/orders`)).status, 200, 'at every replica')
  t.equal(set.idp.stats.refreshReplays, 0, 'no spent refresh token was presented again')
  t.equal(set.idp.stats.revokedGrants, 0, 'and the grant stands')
  t.equal(set.idp.stats.refreshGrants, 1, 'one redemption: the late one')
})
