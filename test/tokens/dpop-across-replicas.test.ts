import t from 'tap'
import { watchProofs } from '../helpers/dpop.js'
import { TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { dumpKeys } from '../helpers/redis-dump.js'
import { startReplicaSet } from '../helpers/replicas.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

/**
 * The session's DPoP key travels with its record: whichever replica
 * refreshes signs with the key the login made, the IdP (which requires
 * DPoP-bound tokens and nonces) binds every token to it, the rotated
 * refresh token is never replayed, and Redis never holds the key in the
 * clear.
 */
t.test('any replica refreshes with the session key from Redis; a dump holds no key', async (t) => {
  const clock = new TestClock()
  const prefix = `${redis.prefix}dpop-replicas:`
  const set = await startReplicaSet({
    store: redis.url,
    keyPrefix: prefix,
    accessTokenTtl: 60,
    now: clock.now,
    oidc: { dpop: true },
    idp: { dpopNonce: true },
    client: { dpopBoundAccessTokens: true },
  })
  t.teardown(() => set.close())
  const { idp, urls, jar } = set
  const proofs = watchProofs(idp)
  // The login (on the first replica) happened before the watch: its token tells the key.
  const first = await apiCall(jar, `${urls[0]}/api/orders`)
  t.equal(first.status, 200)

  for (let round = 0; round < 3; round++) {
    clock.advance(61_000)
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => apiCall(jar, `${urls[i % urls.length]}/api/orders`)),
    )
    t.same(
      answers.map((a) => a.status).filter((s) => s !== 200),
      [],
      `round ${round}: every request on every replica is served`,
    )
  }
  t.equal(idp.stats.refreshGrants, 3, 'one refresh per expiry, however many replicas saw it')
  t.equal(idp.stats.refreshReplays, 0, 'no rotated refresh token was replayed')
  t.equal(idp.stats.dpopTokenRequests, idp.stats.tokenRequests, 'every token request carried a proof')
  const refreshProofs = proofs.filter((p) => p.grant === 'refresh_token')
  t.ok(refreshProofs.length >= 3)
  await proofs.settled()
  t.equal(new Set(refreshProofs.map((p) => p.jkt)).size, 1, 'every replica signed with the one session key')
  t.equal(new Set(proofs.map((p) => p.jti)).size, proofs.length, 'no proof was sent twice')

  const dump = await dumpKeys(redis.url, prefix)
  t.ok(dump.size > 0)
  const text = [...dump].join('\n')
  const { jwk } = refreshProofs[0]!
  t.notOk(text.includes(String(jwk.x)), "the key's public coordinates are not in Redis in the clear")
  t.notOk(/"kty"|"crv"|"d":/.test(text), 'no JWK of any kind is')
})
