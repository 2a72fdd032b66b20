import t, { type Test } from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { boundTo } from '../helpers/dpop.js'
import {
  type DpopUpstream,
  DpopVerifier,
  type ProofCheck,
  startDpopUpstream,
} from '../helpers/dpop-resource-server.js'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, followLoginFlow, jarFetch, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { configText, type Reloadable, startReloadable } from '../helpers/reloadable.js'
import { startReplicaSet } from '../helpers/replicas.js'

/**
 * A reload that turned `oidc.dpop` off took the proofs away from every
 * live session whose tokens were bound to its key: its bound token went
 * upstream as Bearer, which a resource server that checks `cnf.jkt` must
 * refuse (RFC 9449 §7.1); a route's own token was minted without a proof;
 * and each refresh then either got a Bearer token the bound session threw
 * away (503 on every call, a refresh token spent each time) or, at an IdP
 * that requires bound tokens for the client, was refused and ended the
 * session. A session now keeps the binding it signed in with: `oidc.dpop`
 * decides for new sign-ins only.
 */

interface Stack {
  readonly s: Reloadable
  readonly upstream: DpopUpstream
  readonly clock: TestClock
}

async function stack(
  t: Test,
  { dpop, requireBinding = false }: { dpop: boolean; requireBinding?: boolean },
): Promise<Stack> {
  let idp: DevIdp | undefined
  // Checks every proof; takes an unbound token as Bearer, never a bound one (RFC 9449 §7.1).
  const upstream = await startDpopUpstream(
    new DpopVerifier((token) => boundTo(idp!, token), { acceptBearer: true }),
  )
  t.teardown(() => upstream.close())
  const clock = new TestClock()
  const s = await startReloadable(
    t,
    () => [
      route('/api/orders', upstream.url),
      // A token of its own, minted from the refresh token: a route's refresh path.
      route('/api/profile', upstream.url, { scopes: ['openid', 'profile'] }),
    ],
    {
      idp: { dpopNonce: true },
      client: { dpopBoundAccessTokens: requireBinding },
      input: { oidc: { dpop } },
      now: clock.now,
    },
  )
  idp = s.idp
  return { s, upstream, clock }
}

async function turnDpop(t: Test, { s }: Stack, dpop: boolean): Promise<void> {
  s.configMap.write(configText({ ...s.input, oidc: { ...s.input.oidc, dpop } }))
  t.match(await s.running.reload(), { result: 'applied' })
  s.idp.resetStats()
}

/** Both routes called for `jar`: their statuses, and the upstream's verdict on each. */
async function callBoth({ s, upstream }: Stack, jar: CookieJar) {
  const from = upstream.verdicts.length
  const statuses: number[] = []
  for (const path of ['/api/orders/x', '/api/profile/x'])
    statuses.push((await apiCall(jar, `${s.url}${path}`)).status)
  return { statuses, verdicts: upstream.verdicts.slice(from), seen: upstream.seen.slice(from) }
}

/** The key (`cnf.jkt`) each request's token is bound to, from the IdP's own store; `undefined`: unbound. */
function keysOf(idp: DevIdp, seen: readonly ProofCheck[]): Promise<(string | undefined)[]> {
  return Promise.all(
    seen.map((check) => boundTo(idp, check.headers.authorization!.replace(/^(DPoP|Bearer) /, ''))),
  )
}

const PROVED = [
  { ok: true, scheme: 'DPoP' },
  { ok: true, scheme: 'DPoP' },
]
const BEARER = [
  { ok: true, scheme: 'Bearer' },
  { ok: true, scheme: 'Bearer' },
]

/** A session signed in with DPoP on, through a reload that turns it off and its tokens' expiry. */
async function boundSessionAcrossReload(t: Test, requireBinding: boolean) {
  const st = await stack(t, { dpop: true, requireBinding })
  const { s, clock } = st
  const { jar } = await login(s.url)
  const before = await callBoth(st, jar)
  t.same(before.statuses, [200, 200])
  const [jkt] = await keysOf(s.idp, before.seen)
  t.ok(jkt, "the session's tokens are bound to its key")

  await turnDpop(t, st, false)
  const after = await callBoth(st, jar)
  t.same(after.statuses, [200, 200], 'the live session is served after the reload')
  t.match(after.verdicts, PROVED, 'every call carries a proof the upstream accepts')
  t.same(await keysOf(s.idp, after.seen), [jkt, jkt], 'with the tokens bound to the same key')
  t.equal(s.idp.stats.tokenRequests, 0, 'the reload spent nothing of the session at the IdP')

  clock.advance(61_000)
  const refreshed = await callBoth(st, jar)
  t.same(refreshed.statuses, [200, 200], 'the refreshed tokens serve')
  t.match(refreshed.verdicts, PROVED)
  t.same(await keysOf(s.idp, refreshed.seen), [jkt, jkt], 'the refreshes bound the new tokens to the key')
  t.equal(s.idp.stats.refreshGrants, 2, "one refresh for the login's token, one for the route's")
  t.equal(s.idp.stats.dpopTokenRequests, s.idp.stats.tokenRequests, 'each with a proof')
  t.equal(s.idp.stats.refreshReplays, 0, 'no refresh token was replayed')
  t.equal(s.idp.stats.revokedGrants, 0, 'no grant was revoked')

  const user = await apiCall(jar, `${s.url}/auth/user`)
  t.equal(user.status, 200, 'the session lives on')
  t.match(user.json(), { sub: 'alice', refreshable: true })
  return st
}

t.test(
  'a reload that turns oidc.dpop off leaves a live session bound; a new sign-in is unbound',
  async (t) => {
    const st = await boundSessionAcrossReload(t, false)
    const { s } = st
    const fresh = await login(s.url)
    const unbound = await callBoth(st, fresh.jar)
    t.same(unbound.statuses, [200, 200])
    t.match(unbound.verdicts, BEARER, 'the new session sends its tokens as Bearer, without a proof')
    t.same(await keysOf(s.idp, unbound.seen), [undefined, undefined], 'its tokens are not bound')
    t.equal(s.idp.stats.refreshReplays, 0)
  },
)

t.test(
  'at an IdP that requires bound tokens for the client, a reload that turns oidc.dpop off ends no session',
  async (t) => {
    await boundSessionAcrossReload(t, true)
  },
)

t.test(
  'a reload that turns oidc.dpop on leaves an unbound session as it was; a new sign-in is bound',
  async (t) => {
    const st = await stack(t, { dpop: false })
    const { s, clock } = st
    const { jar } = await login(s.url)
    t.match(await callBoth(st, jar), { statuses: [200, 200], verdicts: BEARER })

    await turnDpop(t, st, true)
    const after = await callBoth(st, jar)
    t.same(after.statuses, [200, 200])
    t.match(after.verdicts, BEARER, 'the old session still sends Bearer tokens')
    t.equal(s.idp.stats.tokenRequests, 0, "the reload minted none of the session's tokens again")

    clock.advance(61_000)
    const refreshed = await callBoth(st, jar)
    t.same(refreshed.statuses, [200, 200])
    t.match(refreshed.verdicts, BEARER)
    t.same(await keysOf(s.idp, refreshed.seen), [undefined, undefined], 'its refreshed tokens are unbound')
    t.equal(s.idp.stats.refreshGrants, 2)
    t.equal(s.idp.stats.refreshReplays, 0)

    const fresh = await login(s.url)
    const bound = await callBoth(st, fresh.jar)
    t.same(bound.statuses, [200, 200])
    t.match(bound.verdicts, PROVED, 'a new sign-in proves its key')
    const [jkt, routeJkt] = await keysOf(s.idp, bound.seen)
    t.ok(jkt, 'its tokens are bound')
    t.equal(routeJkt, jkt)
  },
)

t.test(
  'a sign-in under way when a reload turns oidc.dpop off completes bound to the key its code was bound to',
  async (t) => {
    const st = await stack(t, { dpop: true })
    const { s } = st
    const jar = new CookieJar()
    const start = await jarFetch(jar, `${s.url}/auth/login`)
    t.ok(new URL(start.location!).searchParams.get('dpop_jkt'), 'the code is bound to a key (RFC 9449 §10)')
    const callbackUrl = await followLoginFlow(jar, start.location!, 'alice')
    await turnDpop(t, st, false)
    t.equal((await jarFetch(jar, callbackUrl)).status, 302, 'the sign-in completes')
    const calls = await callBoth(st, jar)
    t.same(calls.statuses, [200, 200])
    t.match(calls.verdicts, PROVED)
    t.ok((await keysOf(s.idp, calls.seen))[0], 'its tokens are bound')
  },
)

t.test(
  'replicas whose config has oidc.dpop off serve and refresh a session signed in with it on',
  async (t) => {
    const redis = await startRedis()
    t.teardown(() => redis.stop())
    let idp: DevIdp | undefined
    const upstream = await startDpopUpstream(new DpopVerifier((token) => boundTo(idp!, token)))
    t.teardown(() => upstream.close())
    const clock = new TestClock()
    const set = await startReplicaSet({
      store: redis.url,
      keyPrefix: `${redis.prefix}dpop-off-replicas:`,
      accessTokenTtl: 60,
      now: clock.now,
      upstream: upstream.url,
      // The user signs in at the first; the change has reached the others.
      oidc: (replica) => ({ dpop: replica === 0 }),
      idp: { dpopNonce: true },
      client: { dpopBoundAccessTokens: true },
    })
    idp = set.idp
    t.teardown(() => set.close())
    const { urls, jar } = set
    const others = urls.slice(1)
    const served = async () => {
      const statuses: number[] = []
      for (const url of others) statuses.push((await apiCall(jar, `${url}/api/orders`)).status)
      return statuses
    }
    t.same(await served(), [200, 200], 'both replicas serve the session with its token')
    clock.advance(61_000)
    t.same(await served(), [200, 200], 'and once it has expired, with the one they refreshed')
    t.same(
      upstream.verdicts.filter((v) => !v.ok && v.reason !== 'use_dpop_nonce'),
      [],
      'every proof holds',
    )
    t.equal(idp.stats.refreshGrants, 1, 'a replica with DPoP off refreshed the session')
    t.equal(idp.stats.dpopTokenRequests, idp.stats.tokenRequests, 'with a proof')
    t.equal(idp.stats.refreshReplays, 0)
    t.equal(idp.stats.revokedGrants, 0)
  },
)
