/**
 * `/auth/backchannel-logout/<name>` verifies a logout token against that
 * provider alone. A name no provider has (one renamed or removed by a
 * reload, a typo in the URL registered at the IdP) is refused as an
 * invalid logout token: nothing is verified against the other providers,
 * nothing ends, the token's `jti` is not spent, and the operator is told
 * as for every other refused token, since the IdP that keeps posting there
 * logs out nobody.
 */
import { exportJWK, generateKeyPair } from 'jose'
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { startStack } from '../helpers/stack.js'

t.test('a logout token posted to a provider path that names none: 400, logged, nothing ended', async (t) => {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const jwk = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
  const lines: Record<string, unknown>[] = []
  const { idp, gateway } = await startStack(t, {
    idp: { signingKey: jwk },
    backchannelLogout: true,
    routes: (upstream) => [route('/api/orders', upstream)],
    config: { logLevel: 'warn' },
    gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  })
  const base = gateway.url
  const post = (path: string, token: string) =>
    jarFetch(new CookieJar(), `${base}${path}`, {
      method: 'POST',
      body: new URLSearchParams({ logout_token: token }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
  const alice = await login(base, { user: 'alice' })
  const token = await signLogoutToken(
    { issuer: idp.issuer, audience: CLIENT_ID, key: privateKey, kid: 'idp-key' },
    { sub: 'alice' },
  )

  const refused = await post('/auth/backchannel-logout/nobody', token)
  t.equal(refused.status, 400)
  t.match(refused.json(), { error: 'invalid_request', message: 'No such identity provider.' })
  t.equal((await apiCall(alice.jar, `${base}/api/orders`)).status, 200, 'the session runs on')
  t.equal((await post('/auth/backchannel-logout/nobody', token)).status, 400, 'and again')
  t.match(
    lines.filter((line) => line.code === 'GATEHOUSE_ERR_INVALID_LOGOUT_TOKEN'),
    [{ level: 40, msg: 'logout token refused', reason: 'No such identity provider.' }],
    'one warning a minute, as for any refused logout token',
  )

  const ended = await post('/auth/backchannel-logout', token)
  t.same(ended.json(), { ended: 1 }, 'the same token at the shared path: its jti was not spent')
  t.equal((await apiCall(alice.jar, `${base}/api/orders`)).status, 401)
})
