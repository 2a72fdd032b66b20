/**
 * An IdP whose client-credentials answer gives an `expires_in` past what
 * Redis takes as a key's expiry (`SET … PX` holds a signed 64-bit count of
 * ms from now): the shared copy's write was refused, every request answered
 * 503 `session_store_unavailable`, which blamed a store that was fine, and
 * every request fetched another token, since none was ever held. The
 * lifetime is bounded (token-lifetime.ts): the token is fetched once and
 * served. Against the real dev IdP, whose edge gives the answer, and a real
 * Redis.
 */
import t from 'tap'
import { apiCall, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startStack } from '../helpers/stack.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

for (const expiresIn of [1e16, 1e20, 1e300]) {
  t.test(`a client token with expires_in ${expiresIn} is fetched once and served`, async (t) => {
    const stack = await startStack(t, {
      config: { store: redis.url, keyPrefix: `${redis.prefix}${expiresIn}:` },
    })
    const base = stack.gateway.url
    const { jar } = await login(base)
    stack.idp.answer('token', {
      status: 200,
      body: { access_token: 'client-token', token_type: 'Bearer', expires_in: expiresIn },
      grantType: 'client_credentials',
    })
    stack.idp.resetStats()
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) statuses.push((await apiCall(jar, `${base}/api/reports`)).status)
    t.same(statuses, [200, 200, 200, 200, 200])
    t.equal(stack.idp.stats.tokenRequests, 1, 'one fetch for every request')
    t.equal(stack.upstream.requests.at(-1)?.authorization, 'Bearer client-token')
  })
}
