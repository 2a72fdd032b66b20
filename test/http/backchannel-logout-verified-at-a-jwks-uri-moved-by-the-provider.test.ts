/**
 * Logout tokens are verified against the keys at the provider's
 * `jwks_uri`, by a verifier each app makes once per provider. A config
 * reload discovers the provider again (src/oidc/rediscovery.ts); a
 * provider that moved its keys to another `jwks_uri` must then have its
 * tokens verified there, by the app already serving too, as a `SIGHUP`
 * with the file as it was builds no new one: a verifier made from the old
 * document would look for the new key at the old address, and answer the
 * provider 503 for a token it signed.
 */
import { exportJWK, generateKeyPair } from 'jose'
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route } from '../helpers/gateway.js'
import { serveHttp } from '../helpers/http-server.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { startReloadable } from '../helpers/reloadable.js'

t.test(
  'a logout token signed with a key at the jwks_uri the provider moved to is verified there',
  async (t) => {
    const first = await generateKeyPair('RS256', { extractable: true })
    const moved = await generateKeyPair('RS256', { extractable: true })
    const signingKey = { ...(await exportJWK(first.privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
    const movedKey = { ...(await exportJWK(moved.publicKey)), kid: 'moved-key', alg: 'RS256', use: 'sig' }
    const keys = await serveHttp(t, (_, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ keys: [movedKey] }))
    })
    const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], {
      watch: false,
      accessTokenTtl: 600,
      idp: { signingKey },
    })
    const base = stack.url
    const alice = await login(base, { user: 'alice' })
    const bob = await login(base, { user: 'bob' })
    const deliver = async (token: string) =>
      (
        await jarFetch(new CookieJar(), `${base}/auth/backchannel-logout`, {
          method: 'POST',
          body: new URLSearchParams({ logout_token: token }),
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        })
      ).status
    const signer = { issuer: stack.idp.issuer, audience: CLIENT_ID }

    t.equal(
      await deliver(
        await signLogoutToken({ ...signer, key: first.privateKey, kid: 'idp-key' }, { sub: 'bob' }),
      ),
      200,
      "bob's logout, verified at the jwks_uri discovered at start",
    )
    t.equal((await apiCall(bob.jar, `${base}/api`)).status, 401)

    stack.idp.advertise({ jwks_uri: `${keys}/keys` })
    t.equal((await stack.running.reload()).result, 'unchanged', 'a SIGHUP with the file as it was')
    t.equal(
      await deliver(
        await signLogoutToken({ ...signer, key: moved.privateKey, kid: 'moved-key' }, { sub: 'alice' }),
      ),
      200,
      "alice's logout, signed with the key at the moved jwks_uri, is verified there",
    )
    t.equal((await apiCall(alice.jar, `${base}/api`)).status, 401, "alice's session ended")
  },
)
