import { exportJWK, generateKeyPair } from 'jose'
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route, type TestProvider } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { startRedis } from '../helpers/redis.js'
import { configText, startReloadable } from '../helpers/reloadable.js'
import { until } from '../helpers/websocket.js'

/**
 * A logout token is for a client, and ends its sessions under whichever
 * provider entry they signed in (docs/identity-providers.md). An entry a
 * reload added, sharing its issuer and client id with another, and that a
 * later reload removed, was missed: a logout looked in the indexes of the
 * entries configured now and of those the process started with, and the
 * removed entry's session, which serves until its login token is due, ran
 * on after the IdP had signed its user out, though the token was taken
 * (200, `ended: 0`).
 */

const redis = await startRedis()
t.teardown(() => redis.stop())

const { privateKey } = await generateKeyPair('RS256', { extractable: true })
const signingKey = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }

for (const store of ['memory', 'redis'] as const) {
  t.test(
    `${store}: a logout ends the session of an entry of its client that a reload added and a later one removed`,
    async (t) => {
      const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], {
        idp: { signingKey },
        laterProviders: ['added'],
        input: (issuer) => ({
          identityProviders: [{ name: 'corp', issuer }],
          ...(store === 'redis' ? { store: redis.url, keyPrefix: `${redis.prefix}${Math.random()}:` } : {}),
        }),
      })
      const issuer = stack.idp.issuer
      const reload = async (names: string[]) => {
        const providers: TestProvider[] = names.map((name) => ({ name, issuer }))
        stack.configMap.write(configText({ ...stack.input, identityProviders: providers }))
        t.ok(
          await until(
            () => stack.running.config.identityProviders.map((p) => p.name).join() === names.join(),
          ),
          `the reload to ${names.join(', ')} applies`,
        )
      }

      await reload(['corp', 'added'])
      const viaAdded = await login(stack.url, { params: { idp: 'added' } })
      const viaCorp = await login(stack.url, { params: { idp: 'corp' } })
      const api = async (jar: CookieJar) => (await apiCall(jar, `${stack.url}/api`)).status
      t.equal(await api(viaAdded.jar), 200)

      await reload(['corp'])
      t.equal(await api(viaAdded.jar), 200, "the removed entry's session serves until its login token is due")

      const token = await signLogoutToken(
        { issuer, audience: CLIENT_ID, key: privateKey, kid: 'idp-key' },
        { sub: 'alice' },
      )
      const answer = await jarFetch(new CookieJar(), `${stack.url}/auth/backchannel-logout`, {
        method: 'POST',
        body: new URLSearchParams({ logout_token: token }),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
      t.equal(answer.status, 200, 'the token is for a client still configured')
      t.equal(answer.json().ended, 2, "both sessions of the client: corp's, and the removed entry's")
      t.equal(await api(viaAdded.jar), 401, "the removed entry's session is over")
      t.equal(await api(viaCorp.jar), 401)
    },
  )
}
