/**
 * A token's key was its scopes joined by spaces, and ` dpop` after them
 * when it was bound: a bearer route with scopes `[audit.read, dpop]` and a
 * DPoP route with `[audit.read]` had one key, so whichever came first got
 * its token sent to the other, a bearer token to a route that must prove a
 * key, or a bound one as Bearer. So for a `token: client` route's
 * client-credentials token and for a user route's own token (RFC 8707
 * resource). Against the dev IdP (oidc-provider), which binds a token to
 * the proof's key when a request carries one and issues Bearer otherwise,
 * and an upstream that checks every proof and takes unbound Bearer tokens.
 */
import t from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { boundTo } from '../helpers/dpop.js'
import { DpopVerifier, startDpopUpstream } from '../helpers/dpop-resource-server.js'
import { route } from '../helpers/gateway.js'
import { apiCall } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startReplicaSet } from '../helpers/replicas.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

const AUDIT = 'https://audit.example'
/** "audit.read" sorts before "dpop", so the bearer route's scopes read as the bound route's key did. */
const SCOPES = ['audit.read', 'dpop']

const pairs = [
  { kind: 'client', bearer: '/bearer-client', bound: '/dpop-client', grants: 'clientCredentialsGrants' },
  { kind: 'user', bearer: '/bearer-user', bound: '/dpop-user', grants: 'refreshGrants' },
] as const

for (const boundFirst of [false, true]) {
  t.test(
    `the bearer and the DPoP route each get a token of their own (${boundFirst ? 'DPoP' : 'bearer'} first)`,
    async (t) => {
      let idp: DevIdp | undefined
      const verifier = new DpopVerifier((token) => boundTo(idp!, token), { acceptBearer: true })
      const upstream = await startDpopUpstream(verifier)
      t.teardown(() => upstream.close())
      const set = await startReplicaSet({
        store: redis.url,
        keyPrefix: `${redis.prefix}keys-${boundFirst}:`,
        count: 1,
        accessTokenTtl: 300,
        upstream: upstream.url,
        routes: (to) => [
          route('/bearer-client', to, { token: 'client', scopes: SCOPES, dpop: false }),
          route('/dpop-client', to, { token: 'client', scopes: ['audit.read'], dpop: true }),
          route('/bearer-user', to, { resource: AUDIT, scopes: SCOPES, dpop: false }),
          route('/dpop-user', to, { resource: AUDIT, scopes: ['audit.read'], dpop: true }),
        ],
        // RFC 6749 §6: a refresh may ask only for scopes the login was granted.
        oidc: { dpop: true, scopes: ['openid', 'offline_access', ...SCOPES] },
        idp: { extraScopes: SCOPES, resourceIndicators: { resources: { [AUDIT]: { scopes: SCOPES } } } },
      })
      t.teardown(() => set.close())
      idp = set.idp
      const [url] = set.urls

      for (const pair of pairs) {
        const sent = new Map<string, { token: string; scheme: string }>()
        for (const path of boundFirst ? [pair.bound, pair.bearer] : [pair.bearer, pair.bound]) {
          const before = upstream.verdicts.length
          const answer = await apiCall(set.jar, `${url}${path}`)
          t.equal(answer.status, 200, `${path} is served: ${answer.text.slice(0, 300)}`)
          const verdict = upstream.verdicts[before]
          t.match(verdict, { ok: true }, `${path}: the upstream takes what it was sent`)
          const [scheme, token] = (upstream.seen[before]?.headers.authorization ?? '').split(' ')
          sent.set(path, { token: token!, scheme: scheme! })
        }
        const bearer = sent.get(pair.bearer)!
        const bound = sent.get(pair.bound)!
        t.equal(bearer.scheme, 'Bearer', `${pair.kind}: the bearer route sends Bearer`)
        t.equal(await boundTo(set.idp, bearer.token), undefined, `${pair.kind}: an unbound token`)
        t.equal(bound.scheme, 'DPoP', `${pair.kind}: the DPoP route sends DPoP`)
        t.ok(await boundTo(set.idp, bound.token), `${pair.kind}: a token bound to a key`)
        t.not(bearer.token, bound.token, `${pair.kind}: two tokens`)
        t.equal(set.idp.stats[pair.grants], 2, `${pair.kind}: one grant for each`)
      }
    },
  )
}
