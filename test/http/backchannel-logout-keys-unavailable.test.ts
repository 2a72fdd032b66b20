import { exportJWK, generateKeyPair } from 'jose'
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { startStack } from '../helpers/stack.js'

/**
 * A logout token that arrives while the issuer's JWKS cannot be fetched
 * was refused as invalid (400), which an IdP takes as final (Back-Channel
 * Logout §2.8): the user's sessions ran on after the IdP signed them out.
 * It is a 503 with Retry-After now, nothing is ended or remembered, and
 * the same token sent again once the keys are back is carried out.
 */
t.test(
  'a logout token that cannot be checked while the JWKS is down is a 503, and taken when resent',
  async (t) => {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true })
    const jwk = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
    const stack = await startStack(t, {
      idp: { signingKey: jwk },
      backchannelLogout: true,
      routes: (upstream) => [route('/api/orders', upstream)],
      config: { logLevel: 'silent' },
    })
    const base = stack.gateway.url
    const { jar } = await login(base, { user: 'erin' })
    const token = await signLogoutToken(
      { issuer: stack.idp.issuer, audience: CLIENT_ID, key: privateKey, kid: 'idp-key' },
      { sub: 'erin' },
    )
    const post = () =>
      jarFetch(new CookieJar(), `${base}/auth/backchannel-logout`, {
        method: 'POST',
        body: new URLSearchParams({ logout_token: token }),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })

    stack.idp.setDown('503')
    const unchecked = await post()
    t.equal(unchecked.status, 503, 'not a 400 the IdP would take as final')
    t.ok(Number(unchecked.headers.get('retry-after')) >= 1, 'with Retry-After')
    t.match(unchecked.json(), { error: 'idp_unavailable', message: /could not be checked/ })
    stack.idp.setDown('ok')
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'nothing was ended')

    t.equal((await post()).status, 200, 'the same token, sent again, is carried out: its jti was not used up')
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'the session ended')
  },
)
