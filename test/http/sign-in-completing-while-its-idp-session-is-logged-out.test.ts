import t, { type Test } from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startStack } from '../helpers/stack.js'

/**
 * The IdP ends a user's IdP session while the gateway completes a sign-in
 * of it: the code is redeemed and the ID token (with that `sid`) checked,
 * but the session record is not written yet. The back-channel logout
 * listed that IdP session's sessions, found none, answered 200
 * {"ended":0}; the record was written just after and the session served
 * 200 with the IdP session gone. The logout now notes the `sid` before it
 * lists, and the sign-in looks for the note after its write.
 */
async function signInRacesItsLogout(t: Test, store: { store: string; keyPrefix: string } | undefined) {
  const { idp, gateway } = await startStack(t, {
    // No refresh falls due during the test: the IdP revokes the grant at its logout.
    accessTokenTtl: 600,
    backchannelLogout: true,
    routes: (upstream) => [route('/api/orders', upstream)],
    config: { logLevel: 'silent', ...store },
  })
  const base = gateway.url
  const sessions = gateway.app.gatehouse.stores.sessions
  // The seam: the IdP's logout lands after the callback's checks, just
  // before the session is stored, as it would from another tab or an admin.
  const create = sessions.create.bind(sessions)
  let delivery: Awaited<ReturnType<typeof idp.endSession>> | undefined
  sessions.create = async (session) => {
    sessions.create = create
    delivery = await idp.endSession('alice')
    return create(session)
  }
  const alice = await login(base, { user: 'alice' })
  t.match(delivery, { delivered: 1, failed: 0 }, 'the IdP delivered its logout token, answered 200')
  t.equal(alice.callback.status, 400, 'the sign-in fails')
  t.match(alice.callback.text, /ended this sign-in(&#39;|')s session \(back-channel logout\)/)
  t.equal((await apiCall(alice.jar, `${base}/api/orders`)).status, 401, 'no session serves')
  t.same(await sessions.idsBySub('alice'), [], 'and none is left in the store')

  const again = await login(base, { user: 'alice' })
  t.equal(again.callback.status, 302, 'a sign-in after the logout is not refused')
  t.equal((await apiCall(again.jar, `${base}/api/orders`)).status, 200)
}

t.test('memory store: a sign-in that completes after its IdP session was logged out does not stand', (t) =>
  signInRacesItsLogout(t, undefined),
)

t.test(
  'Redis store: a sign-in that completes after its IdP session was logged out does not stand',
  async (t) => {
    const redis = await startRedis()
    t.teardown(() => redis.stop())
    await signInRacesItsLogout(t, { store: redis.url, keyPrefix: redis.prefix })
  },
)
