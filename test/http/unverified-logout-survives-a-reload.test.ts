import { exportJWK, generateKeyPair } from 'jose'
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'

/**
 * A logout token that came while its issuer's JWKS could not be fetched is
 * held, unverified, and carried out once the keys can be read. What was
 * held lived in the app of the config it came under, and a config reload
 * closed that app and dropped it (GATEHOUSE_BACKCHANNEL_LOGOUT_LOST,
 * reason closed): oidc-provider and Keycloak never send a logout token
 * again, so the user's session ran on after the IdP had signed it out. A
 * reload during an IdP incident is when an operator is most likely to
 * edit the config. What is held now passes to the app the reload builds,
 * which verifies it with its own providers.
 */
t.test('a logout token held while the JWKS was down is carried out after a config reload', async (t) => {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
  const logs = new LogLines()
  const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], {
    accessTokenTtl: 600,
    idp: { signingKey },
    input: { logLevel: 'debug' },
    logStream: logs.stream,
  })
  const base = stack.url
  const alice = await login(base, { user: 'alice' })
  const bob = await login(base, { user: 'bob' })

  stack.idp.setDown('503')
  const token = await signLogoutToken(
    { issuer: stack.idp.issuer, audience: CLIENT_ID, key: privateKey, kid: 'idp-key' },
    { sub: 'alice' },
  )
  const delivery = await jarFetch(new CookieJar(), `${base}/auth/backchannel-logout`, {
    method: 'POST',
    body: new URLSearchParams({ logout_token: token }),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  })
  t.equal(delivery.status, 503, 'the keys cannot be fetched')
  await logs.seen('the token held', (line) => line.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_UNVERIFIED')

  // A route added: the running IdP client is kept, so the reload applies with the IdP down.
  stack.configMap.write(
    configText({ ...stack.input, routes: [...stack.input.routes, route('/other', stack.upstream.url)] }),
  )
  await logs.seen('the reload applied', (line) => line.code === 'GATEHOUSE_CONFIG_RELOADED')
  await logs.seen('the previous config closed', (line) => /previous config has finished/.test(line.msg))
  t.notOk(
    logs.lines.some((line) => line.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'),
    'the reload drops no token held',
  )

  stack.idp.setDown('ok')
  t.match(
    await logs.seen(
      'the logout carried out',
      (line) => line.msg === "back-channel logout carried out once the issuer's keys could be read",
    ),
    { idp: 'default', ended: 1 },
  )
  t.equal((await apiCall(alice.jar, `${base}/api`)).status, 401, "alice's session ended, after the reload")
  t.equal((await apiCall(bob.jar, `${base}/api`)).status, 200, "bob's session stays")
  t.notOk(JSON.stringify(logs.lines).includes(token), 'never the token itself')
})
