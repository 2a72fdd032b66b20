import { exportJWK, generateKeyPair, type JWTPayload } from 'jose'
import t, { type Test } from 'tap'
import { awaitedLog } from '../helpers/awaited-log.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { startStack } from '../helpers/stack.js'

/**
 * A logout token that came while the issuer's JWKS could not be fetched
 * was answered 503 and forgotten: oidc-provider and Keycloak send a logout
 * token once, whatever the answer, so the user's sessions ran on after the
 * IdP had signed them out. The token is now held as it came, unverified,
 * and verified as any delivery is once the keys can be read: carried out
 * if it passes, refused if not, and nothing is ended before then.
 */
async function setup(t: Test) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const jwk = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
  const { lines, logStream, logged } = awaitedLog()
  const { idp, gateway } = await startStack(t, {
    idp: { signingKey: jwk },
    backchannelLogout: true,
    routes: (upstream) => [route('/api/orders', upstream)],
    config: { logLevel: 'info' },
    gateway: { logStream },
  })
  const base = gateway.url
  const sign = (claims: JWTPayload, key: CryptoKey = privateKey) =>
    signLogoutToken({ issuer: idp.issuer, audience: CLIENT_ID, key, kid: 'idp-key' }, claims)
  const post = (token: string) =>
    jarFetch(new CookieJar(), `${base}/auth/backchannel-logout`, {
      method: 'POST',
      body: new URLSearchParams({ logout_token: token }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
  return { idp, base, lines, logged, sign, post }
}

t.test('a logout token that came while the JWKS was down is carried out once it can be read', async (t) => {
  const { idp, base, lines, logged, sign, post } = await setup(t)
  const { jar } = await login(base, { user: 'erin' })
  const token = await sign({ sub: 'erin' })

  idp.setDown('503')
  const unchecked = await post(token)
  t.equal(unchecked.status, 503, 'the IdP is asked to send it again, as before')
  t.match(await logged((line) => line.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_UNVERIFIED'), {
    level: 40,
    idp: 'default',
  })
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'nothing is ended unverified')

  idp.setDown('ok')
  t.match(
    await logged(
      (line) => line.msg === "back-channel logout carried out once the issuer's keys could be read",
    ),
    { idp: 'default', ended: 1 },
  )
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'the session ended')
  const resent = await post(token)
  t.equal(resent.status, 200, "the IdP's resend, if it sends one, is told the logout is done")
  t.same(resent.json(), { ended: 0 })
  t.notOk(JSON.stringify(lines).includes(token), 'never the token itself')
})

t.test('a forged token held while the JWKS was down is refused once it can be read', async (t) => {
  const { idp, base, lines, logged, sign, post } = await setup(t)
  const { jar } = await login(base, { user: 'erin' })
  const { privateKey: otherKey } = await generateKeyPair('RS256')
  const forged = await sign({ sub: 'erin' }, otherKey)

  idp.setDown('503')
  t.equal((await post(forged)).status, 503)
  await logged((line) => line.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_UNVERIFIED')
  idp.setDown('ok')
  t.match(await logged((line) => line.msg === 'logout token refused'), {
    level: 40,
    reason: /signature does not verify/,
  })
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the session stays')
  t.notOk(JSON.stringify(lines).includes(forged), 'never the token itself')
})

t.test(
  'what is held for an issuer is bounded in count; past it, a token is lost and said to be',
  async (t) => {
    const { idp, lines, logged, sign, post } = await setup(t)
    idp.setDown('503')
    const tokens = await Promise.all(Array.from({ length: 101 }, (_, i) => sign({ sub: `user-${i}` })))
    for (const token of tokens) t.equal((await post(token)).status, 503)
    t.match(await logged((line) => line.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'), {
      level: 50,
      idp: 'default',
      reason: 'full',
    })
    t.equal(
      lines.filter((line) => line.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_UNVERIFIED').length,
      1,
      'one line a minute for the tokens held, as anyone can post them',
    )
    idp.setDown('ok')
  },
)

t.test('what is held for an issuer is bounded in bytes too', async (t) => {
  const { idp, lines, logged, sign, post } = await setup(t)
  idp.setDown('503')
  // About 15 KiB each once encoded, under the endpoint's 16 KiB body
  // limit: 16 of them fill the 256 KiB, long before the count's 100.
  const padding = 'x'.repeat(11 * 1024)
  const tokens = await Promise.all(Array.from({ length: 18 }, (_, i) => sign({ sub: `user-${i}`, padding })))
  for (const token of tokens) t.equal((await post(token)).status, 503)
  t.match(await logged((line) => line.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'), { reason: 'full' })
  t.notOk(JSON.stringify(lines).includes(padding), 'never a token')
  idp.setDown('ok')
})
