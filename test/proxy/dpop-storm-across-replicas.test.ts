import t from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { boundTo } from '../helpers/dpop.js'
import { DpopVerifier, startDpopUpstream } from '../helpers/dpop-resource-server.js'
import { startRedis } from '../helpers/redis.js'
import { startReplicaSet, storm } from '../helpers/replicas.js'

const TTL_S = 3
const RUN_MS = TTL_S * 1000 * 2 + 1_500
const LOOPS = 48

const redis = await startRedis()
t.teardown(() => redis.stop())

/**
 * Three replicas on one Redis, an IdP that requires DPoP-bound tokens and
 * nonces and rotates refresh tokens, 3 s access tokens, and an upstream that
 * verifies every proof as a resource server must and changes its nonce
 * mid-storm. Every request is served, every proof holds, no `jti` comes
 * twice, and no refresh token is replayed.
 */
t.test(
  'a DPoP storm on three replicas: every request 200, every proof valid, no jti reused, no replay',
  async (t) => {
    let idp: DevIdp | undefined
    const verifier = new DpopVerifier((token) => boundTo(idp!, token))
    const upstream = await startDpopUpstream(verifier)
    t.teardown(() => upstream.close())
    const set = await startReplicaSet({
      store: redis.url,
      keyPrefix: `${redis.prefix}dpop-storm:`,
      accessTokenTtl: TTL_S,
      upstream: upstream.url,
      oidc: { dpop: true },
      idp: { dpopNonce: true },
      client: { dpopBoundAccessTokens: true },
    })
    t.teardown(() => set.close())
    idp = set.idp
    const started = Date.now()
    let rotated = false
    const answers = await storm(
      set,
      LOOPS,
      () => Date.now() - started > RUN_MS,
      () => {
        if (!rotated && Date.now() - started > RUN_MS / 2) {
          rotated = true
          upstream.rotateNonce()
        }
      },
    )
    t.ok(answers.length > LOOPS * 3, `${answers.length} requests`)
    t.same(
      answers.filter((a) => a.status !== 200).map((a) => a.status),
      [],
      'every request is served',
    )
    const refused = upstream.verdicts.filter((v) => !v.ok && v.reason !== 'use_dpop_nonce')
    t.same(refused, [], 'every proof holds')
    const jtis = upstream.verdicts.flatMap((v) => (v.ok && v.scheme === 'DPoP' ? [v.jti] : []))
    t.equal(new Set(jtis).size, jtis.length, 'no jti is reused')
    t.ok(upstream.challenges() >= 1, `the nonce change cost ${upstream.challenges()} replays, each answered`)
    t.ok(set.idp.stats.refreshGrants >= 2, `${set.idp.stats.refreshGrants} refreshes`)
    t.equal(set.idp.stats.refreshReplays, 0, 'no refresh token was replayed')
    t.equal(
      set.idp.stats.dpopTokenRequests,
      set.idp.stats.tokenRequests,
      'every token request carried a proof',
    )
  },
)
