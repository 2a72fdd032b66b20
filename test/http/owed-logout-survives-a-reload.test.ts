import { exportJWK, generateKeyPair } from 'jose'
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { startRedis } from '../helpers/redis.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'
import { until } from '../helpers/websocket.js'
import { pollUntil } from '../helpers/within.js'

/**
 * A back-channel logout that came while the store was down is owed: the
 * instance carries it out once the store answers. What was owed lived in
 * the app of the config it came under, and a config reload closed that
 * app and dropped it (GATEHOUSE_BACKCHANNEL_LOGOUT_LOST, reason closed):
 * the user's sessions ran on once the store was back, though the README
 * promises that sessions, locks and caches survive a reload. What is owed
 * now outlives the app, as the stores do, and the app a reload builds
 * carries it out.
 */
t.test('a logout owed since a store outage is carried out after a config reload', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }
  const logs = new LogLines()
  const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], {
    accessTokenTtl: 600,
    idp: { signingKey },
    input: { store: redis.url, keyPrefix: redis.prefix, logLevel: 'debug' },
    logStream: logs.stream,
  })
  const base = stack.url
  const alice = await login(base, { user: 'alice' })
  const bob = await login(base, { user: 'bob' })

  await redis.kill()
  const token = await signLogoutToken(
    { issuer: stack.idp.issuer, audience: CLIENT_ID, key: privateKey, kid: 'idp-key' },
    { sub: 'alice' },
  )
  const delivery = await jarFetch(new CookieJar(), `${base}/auth/backchannel-logout`, {
    method: 'POST',
    body: new URLSearchParams({ logout_token: token }),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  })
  t.equal(delivery.status, 503, 'the store is down')
  await logs.seen('the logout owed', (line) => line.msg === 'back-channel logout owed')

  stack.configMap.write(
    configText({ ...stack.input, routes: [...stack.input.routes, route('/other', stack.upstream.url)] }),
  )
  t.ok(await until(() => stack.running.config.routes.length === 2), 'the reload applies')
  await logs.seen('the previous config closed', (line) => /previous config has finished/.test(line.msg))
  t.notOk(
    logs.lines.some((line) => line.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'),
    'the reload drops nothing owed',
  )

  await redis.restart()
  await logs.seen(
    'the logout carried out',
    (line) => line.msg === 'back-channel logout carried out once the store was back',
  )
  await pollUntil(async () => (await apiCall(alice.jar, `${base}/api`)).status === 401)
  t.pass("alice's session ended once the store was back, after the reload")
  t.equal((await apiCall(bob.jar, `${base}/api`)).status, 200, "bob's session stays")
})
