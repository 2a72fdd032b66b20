import t from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { keyRecordingDpopUpstream } from '../helpers/dpop.js'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { dumpKeys } from '../helpers/redis-dump.js'
import { startReplicaSet } from '../helpers/replicas.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

/**
 * A client route's token is bound to a key of the gateway's own: one grant
 * and one key for three replicas (the key travels with the token, sealed
 * under a key derived from session.secrets), every proof valid at the
 * upstream, and a new key with each new token.
 */
t.test(
  'client-credentials tokens are DPoP-bound with a gateway key shared sealed through Redis, and rotated',
  async (t) => {
    const clock = new TestClock()
    let idp: DevIdp | undefined
    const { upstream, jkts } = await keyRecordingDpopUpstream(t, () => idp!)
    const prefix = `${redis.prefix}client-dpop:`
    const set = await startReplicaSet({
      store: redis.url,
      keyPrefix: prefix,
      accessTokenTtl: 60,
      now: clock.now,
      upstream: upstream.url,
      routes: (to) => [
        route('/api/orders', to),
        route('/api/reports', to, { token: 'client', scopes: ['reports.read'] }),
      ],
      oidc: { dpop: true },
      idp: { dpopNonce: true },
      client: { dpopBoundAccessTokens: true },
    })
    t.teardown(() => set.close())
    idp = set.idp
    const call = () =>
      Promise.all(Array.from({ length: 30 }, (_, i) => apiCall(set.jar, `${set.urls[i % 3]}/api/reports`)))

    const first = await call()
    t.same(
      first.map((a) => a.status).filter((s) => s !== 200),
      [],
      'every request on every replica is served',
    )
    t.same(
      upstream.verdicts.filter((v) => !v.ok),
      [],
      'every proof holds',
    )
    t.equal(set.idp.stats.clientCredentialsGrants, 1, 'one grant for three replicas')
    t.equal(new Set(jkts).size, 1, 'one key, shared by the replicas')
    const jtis = upstream.verdicts.flatMap((v) => (v.ok && v.scheme === 'DPoP' ? [v.jti] : []))
    t.equal(new Set(jtis).size, jtis.length, 'no jti is reused')

    const dump = [...(await dumpKeys(redis.url, prefix))].join('\n')
    t.notOk(/"kty"|"crv"|"d":/.test(dump), 'Redis holds no key in the clear')

    const firstKey = jkts[0]
    clock.advance(61_000)
    jkts.length = 0
    const second = await call()
    t.same(
      second.map((a) => a.status).filter((s) => s !== 200),
      [],
    )
    t.equal(set.idp.stats.clientCredentialsGrants, 2)
    t.equal(new Set(jkts).size, 1, 'one key for the new token too')
    t.not(jkts[0], firstKey, 'a new token comes with a new key: the key rotates')
    t.equal(set.idp.stats.dpopTokenRequests, set.idp.stats.tokenRequests, 'every grant carried a proof')
    t.equal(set.idp.stats.refreshReplays, 0)
  },
)
