import t, { type Test } from 'tap'
import type { DevIdp } from '../../dev/idp.js'
import type { DpopKey } from '../../src/types.js'
import { sessionRefOf } from '../helpers/app.js'
import type { CookieJar } from '../helpers/cookie-jar.js'
import { boundTo } from '../helpers/dpop.js'
import { DpopVerifier, startDpopUpstream } from '../helpers/dpop-resource-server.js'
import { route, TestClock } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { endIdpSession } from '../helpers/logout.js'
import { type Stack, startStack } from '../helpers/stack.js'

/**
 * Issue 22: a session's DPoP key lives in its record, and logout destroys
 * it. The process's ready forms of the key (the IdP handle, the upstream
 * signer) must go with the session wherever this process ends it, not
 * linger until newer keys push them out.
 */
async function setup(t: Test, options: { backchannelLogout?: boolean } = {}) {
  let idp: DevIdp | undefined
  const dpopUpstream = await startDpopUpstream(new DpopVerifier((token) => boundTo(idp!, token)))
  t.teardown(() => dpopUpstream.close())
  const clock = new TestClock()
  const stack = await startStack(t, {
    config: { oidc: { dpop: true } },
    client: { dpopBoundAccessTokens: true },
    routes: () => [route('/api/orders', dpopUpstream.url)],
    gateway: { now: clock.now },
    ...options,
  })
  idp = stack.idp
  const base = stack.gateway.url
  const keys = stack.gateway.app.gatehouse.lasting.dpopKeys
  /** A user signed in and served once on the DPoP route, with the key their session holds. */
  const signedIn = async (user: string) => {
    const { jar } = await login(base, { user })
    const served = await apiCall(jar, `${base}/api/orders`)
    if (served.status !== 200) throw new Error(`the DPoP route answered HTTP ${served.status}`)
    return { jar, key: await keyOf(stack, jar, clock) }
  }
  return { stack, base, keys, clock, dpopUpstream, signedIn }
}

async function keyOf(stack: Stack, jar: CookieJar, clock: TestClock): Promise<DpopKey> {
  const ref = sessionRefOf(stack.gateway.app, jar.get(stack.gateway.url, 'gatehouse')!)
  const session = await stack.gateway.app.gatehouse.stores.sessions.get(ref, clock.now(), { touch: false })
  if (!session?.dpopKey) throw new Error('the session has no DPoP key')
  return session.dpopKey
}

t.test(
  "logout drops the session's key from this process's caches; another session keeps working",
  async (t) => {
    const { base, keys, dpopUpstream, signedIn } = await setup(t)
    const alice = await signedIn('alice')
    const bob = await signedIn('bob')
    t.ok(keys.holds(alice.key), "alice's key is held ready while she is signed in")
    t.ok(keys.holds(bob.key))

    const user = (await apiCall(alice.jar, `${base}/auth/user`)).json() as { logoutUrl: string }
    const out = await jarFetch(alice.jar, `${base}${user.logoutUrl}`)
    t.ok(out.status < 400, `logged out (HTTP ${out.status})`)
    t.notOk(keys.holds(alice.key), "no cache holds alice's key once she has logged out")
    t.ok(keys.holds(bob.key), "bob's stays")

    const served = await apiCall(bob.jar, `${base}/api/orders`)
    t.equal(served.status, 200, 'bob is still served on the DPoP route')
    t.match(
      dpopUpstream.verdicts.at(-1),
      { ok: true, scheme: 'DPoP' },
      'with a proof the resource server accepts',
    )
  },
)

t.test('log out everywhere drops the key of every session it ends, known here by id alone', async (t) => {
  const { base, keys, signedIn } = await setup(t)
  const here = await signedIn('alice')
  const there = await signedIn('alice')
  const bob = await signedIn('bob')
  const ended = await apiCall(here.jar, `${base}/auth/logout-everywhere`, { method: 'POST' })
  t.same(ended.json(), { ended: 2 })
  t.notOk(keys.holds(here.key), "the asking session's key is gone")
  t.notOk(keys.holds(there.key), "so is the other session's, whose record the gateway never opened to end it")
  t.ok(keys.holds(bob.key), "another user's stays")
  t.equal((await apiCall(bob.jar, `${base}/api/orders`)).status, 200)
})

t.test('a back-channel logout drops the key of the session it ends', async (t) => {
  const { stack, base, keys, signedIn } = await setup(t, { backchannelLogout: true })
  const alice = await signedIn('alice')
  const bob = await signedIn('bob')
  const ended = await endIdpSession(alice.jar, stack.idp.issuer)
  t.ok(ended.status < 400, `the IdP logged out (HTTP ${ended.status})`)
  t.notOk(keys.holds(alice.key), "alice's key is gone")
  t.ok(keys.holds(bob.key), "bob's stays")
  t.equal((await apiCall(alice.jar, `${base}/api/orders`)).status, 401, 'her session ended')
  t.equal((await apiCall(bob.jar, `${base}/api/orders`)).status, 200)
})

t.test('a refresh that ends the session drops its key before the answer goes out', async (t) => {
  const { stack, base, keys, clock, signedIn } = await setup(t)
  const alice = await signedIn('alice')
  const ref = sessionRefOf(stack.gateway.app, alice.jar.get(base, 'gatehouse')!)
  const session = await stack.gateway.app.gatehouse.stores.sessions.get(ref, clock.now(), { touch: false })
  // The grant dies at the IdP (an admin revoked it, or it expired there).
  await stack.gateway.app.gatehouse.oidc.revoke(session!.tokens.refreshToken!)
  clock.advance(61_000)
  const expired = await apiCall(alice.jar, `${base}/api/orders`)
  t.equal(expired.status, 401)
  t.equal(expired.json().error, 'session_expired')
  t.notOk(keys.holds(alice.key), 'no cache holds the key of the session the refresh ended')
})
