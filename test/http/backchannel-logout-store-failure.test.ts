import { exportJWK, generateKeyPair } from 'jose'
import t from 'tap'
import { gatehouseError } from '../../src/errors.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { startStack } from '../helpers/stack.js'

/**
 * A logout token whose sessions the store failed to end (the store down
 * half way through) is answered 503, and the IdP may send it again. Its
 * `jti` was noted as seen before the sessions were listed, so the second
 * delivery was refused as a replay (400) and the sessions the first one
 * did not reach ran on, though the IdP had signed the user out.
 */
t.test('a logout token the store failed to carry out is taken again when the IdP resends it', async (t) => {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const jwk = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
  const stack = await startStack(t, {
    idp: { signingKey: jwk },
    backchannelLogout: true,
    routes: (upstream) => [route('/api/orders', upstream)],
    config: { logLevel: 'silent' },
  })
  const base = stack.gateway.url
  const store = stack.gateway.app.gatehouse.stores.sessions
  const one = await login(base, { user: 'dave' })
  const two = await login(base, { user: 'dave' })
  t.equal((await store.idsBySub('dave')).length, 2)

  const token = await signLogoutToken(
    { issuer: stack.idp.issuer, audience: CLIENT_ID, key: privateKey, kid: 'idp-key' },
    { sub: 'dave' },
  )
  const post = () =>
    jarFetch(new CookieJar(), `${base}/auth/backchannel-logout`, {
      method: 'POST',
      body: new URLSearchParams({ logout_token: token }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })

  // The store fails at the seam, for every delete: as Redis gone mid-way would.
  const remove = store.delete.bind(store)
  store.delete = async () => {
    throw gatehouseError('GATEHOUSE_ERR_STORE_UNAVAILABLE')
  }
  const failed = await post()
  t.ok(failed.status >= 500, `the failed logout is not answered as done (HTTP ${failed.status})`)
  store.delete = remove

  const again = await post()
  t.equal(again.status, 200, 'the same token, sent again, is carried out')
  t.equal((await apiCall(one.jar, `${base}/api/orders`)).status, 401, 'the first session ended')
  t.equal((await apiCall(two.jar, `${base}/api/orders`)).status, 401, 'the second session ended')
})
