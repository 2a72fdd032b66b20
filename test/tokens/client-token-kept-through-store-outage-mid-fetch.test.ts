/**
 * A client route's token is shared through Redis. When Redis went away
 * while the IdP was issuing one, the failed write (and the failed release
 * of the lock) threw the issued token away: the request answered 503
 * `session_store_unavailable`, every request after it did too for the
 * outage and past it while the unreleased lock lived, and the IdP was
 * asked again. Now the token the IdP issued is used and held, as one
 * fetched earlier would be.
 */
import t from 'tap'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, type JarResponse } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startReplicaSet } from '../helpers/replicas.js'
import { until } from '../helpers/websocket.js'

/** What the echo upstream saw of the forwarded token: a fingerprint, never the token. */
const fingerprint = (answer: JarResponse) =>
  answer.json<{ token?: { fingerprint?: string } }>().token?.fingerprint

t.test('a client token issued while Redis goes away is used, and held past the outage', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const set = await startReplicaSet({
    store: redis.url,
    keyPrefix: redis.prefix,
    accessTokenTtl: 60,
    now: new TestClock().now,
    count: 1,
    routes: (to) => [
      route('/api/orders', to),
      route('/api/reports', to, { token: 'client', scopes: ['reports.read'] }),
    ],
  })
  t.teardown(() => set.close())
  const reports = `${set.urls[0]}/api/reports`
  set.idp.setTokenAnswerDelay(800)
  const issued = new Promise<void>((resolve) => set.idp.provider.once('grant.success', () => resolve()))
  const asked = apiCall(set.jar, reports)
  // The IdP has issued the token and not yet answered: Redis goes now.
  await issued
  await redis.kill()
  const first = await asked
  t.equal(first.status, 200, 'the request that asked is served with the token issued')
  t.ok(fingerprint(first), 'and a token is forwarded')
  set.idp.setTokenAnswerDelay(0)
  await redis.restart()
  // The session is read from Redis: served once the gateway has reconnected.
  let after: JarResponse | undefined
  await until(async () => {
    after = await apiCall(set.jar, reports)
    return after.status !== 503
  })
  t.equal(after?.status, 200, 'Redis back: served')
  t.equal(after && fingerprint(after), fingerprint(first), 'with the token issued during the outage')
  t.equal(set.idp.stats.clientCredentialsGrants, 1, 'the IdP was asked once')
})
