import t from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { keyRecordingDpopUpstream } from '../helpers/dpop.js'
import { route } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startReplicaSet } from '../helpers/replicas.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

/**
 * A client route's DPoP-bound token refused (RFC 9449 §7.1: `DPoP
 * error="invalid_token"`): the new token comes with a key of its own, so
 * the replay's proof must be made with that key and carry the new token's
 * hash; and a nonce the upstream rotated with its refusal is answered by
 * the `use_dpop_nonce` replay, as before.
 */
t.test('a refused DPoP-bound client token is replaced, and the replay proves the new key', async (t) => {
  let idp: DevIdp | undefined
  const { upstream, jkts } = await keyRecordingDpopUpstream(t, () => idp!)
  const set = await startReplicaSet({
    count: 2,
    store: redis.url,
    keyPrefix: `${redis.prefix}bound-client-refused:`,
    accessTokenTtl: 3_600,
    upstream: upstream.url,
    routes: (to) => [route('/api/reports', to, { token: 'client', scopes: ['reports.read'] })],
    oidc: { dpop: true },
    idp: { dpopNonce: true },
    client: { dpopBoundAccessTokens: true },
  })
  t.teardown(() => set.close())
  idp = set.idp
  t.equal((await apiCall(set.jar, `${set.urls[0]}/api/reports`)).status, 200)
  t.equal(set.idp.stats.clientCredentialsGrants, 1)
  const firstKey = jkts.at(-1)

  upstream.refuseNextToken({ rotateNonce: true })
  const res = await apiCall(set.jar, `${set.urls[0]}/api/reports`)
  t.equal(res.status, 200, 'the browser sees the replay')
  t.equal(upstream.refusals(), 1)
  t.equal(set.idp.stats.clientCredentialsGrants, 2, 'one new grant')
  t.equal(upstream.challenges(), 1, 'the nonce rotated with the refusal was asked for once, and answered')
  t.ok(upstream.verdicts.at(-1)!.ok, "the last attempt's proof holds")
  t.not(jkts.at(-1), firstKey, "proved with the new token's key")

  const other = await apiCall(set.jar, `${set.urls[1]}/api/reports`)
  t.equal(other.status, 200, 'the other instance takes the new token and its key')
  t.equal(set.idp.stats.clientCredentialsGrants, 2)
})
