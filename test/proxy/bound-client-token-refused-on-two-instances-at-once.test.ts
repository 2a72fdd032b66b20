import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { boundTo } from '../helpers/dpop.js'
import { DpopVerifier } from '../helpers/dpop-resource-server.js'
import { route } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startReplicaSet } from '../helpers/replicas.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

/**
 * Both instances meet the refusal of their shared DPoP-bound client token
 * at once (a resource server that stopped taking it), each with many
 * requests in flight: the cluster makes one new grant, so one new key,
 * and every replay on either instance proves that key for that token.
 */
t.test(
  'a bound client token refused on two instances at once: one grant, one new key, every replay holds',
  async (t) => {
    let idp: DevIdp | undefined
    const jkts: string[] = []
    const verifier = new DpopVerifier(async (token) => {
      const jkt = await boundTo(idp!, token)
      if (jkt) jkts.push(jkt)
      return jkt
    })
    const refused = new Set<string>()
    let served = 0
    let badProofs = 0
    let lastToken = ''
    let refusals = 0
    const server = createServer(async (req, res) => {
      for await (const _ of req);
      const { port } = server.address() as AddressInfo
      const token = /^DPoP (\S+)$/.exec(req.headers.authorization ?? '')?.[1] ?? ''
      const verdict = await verifier.verify({
        method: req.method ?? '',
        url: `http://127.0.0.1:${port}${req.url}`,
        headers: req.headers,
      })
      if (!verdict.ok) {
        badProofs++
        res.writeHead(401, { 'www-authenticate': 'DPoP error="invalid_dpop_proof"' }).end(verdict.reason)
        return
      }
      lastToken = token
      if (refused.has(token)) {
        refusals++
        res.writeHead(401, { 'www-authenticate': 'DPoP error="invalid_token"' }).end()
        return
      }
      served++
      res.end('ok')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const set = await startReplicaSet({
      count: 2,
      store: redis.url,
      keyPrefix: `${redis.prefix}bound-client-two-at-once:`,
      accessTokenTtl: 3_600,
      upstream: url,
      routes: (to) => [route('/api/reports', to, { token: 'client', scopes: ['reports.read'] })],
      oidc: { dpop: true },
      client: { dpopBoundAccessTokens: true },
    })
    t.teardown(() => set.close())
    idp = set.idp
    for (const u of set.urls) t.equal((await apiCall(set.jar, `${u}/api/reports`)).status, 200)
    t.equal(set.idp.stats.clientCredentialsGrants, 1, 'one token and key for both')
    const firstKey = jkts.at(-1)!

    // The token both hold, as the upstream last saw it.
    refused.add(lastToken)
    served = 0
    jkts.length = 0
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) => apiCall(set.jar, `${set.urls[i % 2]}/api/reports`)),
    )
    t.same(
      answers.map((a) => a.status).filter((s) => s !== 200),
      [],
      'every request is served',
    )
    t.equal(served, 100, 'by a replay or a request with the new token')
    t.ok(refusals > 1, `the old token was refused on the wire (${refusals} times)`)
    t.equal(set.idp.stats.clientCredentialsGrants, 2, 'one new grant for the cluster')
    t.equal(badProofs, 0, 'no proof is refused: each names the key its token is bound to')
    const newKeys = new Set(jkts.filter((k) => k !== firstKey))
    t.equal(newKeys.size, 1, 'one new key')
    t.equal(set.idp.stats.refreshReplays, 0)
  },
)
