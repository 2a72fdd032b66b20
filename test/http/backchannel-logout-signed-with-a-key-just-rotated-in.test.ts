import { exportJWK, generateKeyPair } from 'jose'
import t from 'tap'
import { awaitedLog } from '../helpers/awaited-log.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { startStack } from '../helpers/stack.js'

/**
 * An IdP that rotates a signing key in and signs a logout token with it at
 * once: the gateway's copy of its JWKS, fetched moments before for another
 * token, lacks the new `kid`, and jose will not fetch again for 30 s. The
 * delivery was answered 503 with `Retry-After` and forgotten, so with an
 * IdP that sends a logout token once, whatever the answer (oidc-provider,
 * Keycloak), the user's sessions ran on. It is now held, as a token that
 * came while the JWKS was down is, and carried out once the keys can be
 * read again.
 */
t.test('a logout token signed with a key rotated in just after a JWKS fetch is carried out', async (t) => {
  const { privateKey: oldKey } = await generateKeyPair('RS256', { extractable: true })
  const { privateKey: newKey } = await generateKeyPair('RS256', { extractable: true })
  const published = { ...(await exportJWK(oldKey)), kid: 'old-key', alg: 'RS256', use: 'sig' }
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...newPublic } = await exportJWK(newKey)
  const rotatedIn = { ...newPublic, kid: 'new-key', alg: 'RS256', use: 'sig' }
  let rotated = false
  const { lines, logStream, logged } = awaitedLog()
  const { idp, gateway } = await startStack(t, {
    idp: {
      signingKey: published,
      quirks: { jwksDocument: (jwks) => (rotated ? { keys: [...jwks.keys, rotatedIn] } : jwks) },
    },
    backchannelLogout: true,
    routes: (upstream) => [route('/api/orders', upstream)],
    config: { logLevel: 'info' },
    gateway: { logStream },
  })
  const base = gateway.url
  const post = (token: string) =>
    jarFetch(new CookieJar(), `${base}/auth/backchannel-logout`, {
      method: 'POST',
      body: new URLSearchParams({ logout_token: token }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
  const { jar } = await login(base, { user: 'erin' })

  // Another user's logout: the gateway fetches the JWKS as it stands.
  const before = await signLogoutToken(
    { issuer: idp.issuer, audience: CLIENT_ID, key: oldKey, kid: 'old-key' },
    { sub: 'someone-else' },
  )
  t.equal((await post(before)).status, 200, 'verified against the JWKS as fetched')

  rotated = true
  const token = await signLogoutToken(
    { issuer: idp.issuer, audience: CLIENT_ID, key: newKey, kid: 'new-key' },
    { sub: 'erin' },
  )
  const unchecked = await post(token)
  t.equal(unchecked.status, 503, 'the JWKS was fetched too recently to fetch again for its kid')
  t.ok(unchecked.headers.get('retry-after'), 'the IdP is told when to send it again')
  t.ok(
    lines.some((line) => line.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_UNVERIFIED'),
    'held, not forgotten, before the 503 went out',
  )
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'nothing is ended unverified')

  t.match(
    await logged(
      (line) => line.msg === "back-channel logout carried out once the issuer's keys could be read",
    ),
    { idp: 'default', ended: 1 },
  )
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'the session ended')
  t.notOk(JSON.stringify(lines).includes(token), 'never the token itself')
})
