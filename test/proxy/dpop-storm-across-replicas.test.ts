import t from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { boundTo } from '../helpers/dpop.js'
import { DpopVerifier, startDpopUpstream } from '../helpers/dpop-resource-server.js'
import { startRedis } from '../helpers/redis.js'
import { startReplicaSet, storm } from '../helpers/replicas.js'

const TTL_S = 6
/**
 * A request whose token was checked just inside this reaches the upstream,
 * which looks the token up at the IdP, this much before it expires there;
 * and a refresh has the token's whole use to come back in. The test is
 * about proofs, nonces and rotation under concurrency, not expiry: at
 * 500 ms of 3 s tokens (1.5 s of use), a storm slowed to a request every
 * 2 to 3 s per loop (CI's run managed one every 1.3 s) had a token expire
 * at the IdP in flight, the upstream refusing its proof as bound to no
 * token, and answered 503 (token_refresh_unavailable) while the refreshes
 * of tokens that short ran behind.
 */
const REFRESH_BEFORE = 2_000 // ms
/** How long the gateway forwards each token: its life, less the second `expiresAt` takes off, less REFRESH_BEFORE. */
const USABLE_MS = TTL_S * 1000 - 1_000 - REFRESH_BEFORE
/** Three tokens' use: two refreshes are asked for, the third is a loaded machine's slack. */
const RUN_MS = 3 * USABLE_MS + 1_500
const LOOPS = 48

const redis = await startRedis()
t.teardown(() => redis.stop())

/**
 * Three replicas on one Redis, an IdP that requires DPoP-bound tokens and
 * nonces and rotates refresh tokens, 6 s access tokens, and an upstream that
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
      refreshBefore: REFRESH_BEFORE,
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
