import { exportJWK, generateKeyPair } from 'jose'
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { CLIENT_ID, route, type TestProvider } from '../helpers/gateway.js'
import { jarFetch } from '../helpers/login.js'
import { signLogoutToken } from '../helpers/logout.js'
import { startRedis } from '../helpers/redis.js'
import { configText, startReloadable } from '../helpers/reloadable.js'
import { until } from '../helpers/websocket.js'

/**
 * A used logout token is remembered for 5 minutes, so a replay of it
 * (§2.6: the `jti`) ends nothing. It was remembered under the name of the
 * first provider entry of its issuer and client id, so a reload that added
 * an entry of the same client before it, removed it, or turned `oidc:`
 * into `identityProviders:` renamed the record, and the same token was
 * taken again. The token is the client's, whatever the entries are called.
 */

const redis = await startRedis()
t.teardown(() => redis.stop())

const { privateKey } = await generateKeyPair('RS256', { extractable: true })
const signingKey = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' }

/** Each case: the providers before (none: `oidc:`) and after the reload, of one issuer and client id. */
const cases: { name: string; before?: string[]; after: string[] }[] = [
  { name: 'an entry of the same client added before it', before: ['corp'], after: ['admin', 'corp'] },
  { name: 'the first entry of the client removed', before: ['corp', 'admin'], after: ['admin'] },
  { name: 'oidc: rewritten as identityProviders:', after: ['corp'] },
]

for (const store of ['memory', 'redis'] as const) {
  for (const { name, before, after } of cases) {
    t.test(`${store}: a used logout token stays used across a reload: ${name}`, async (t) => {
      const providers = (names: string[], issuer: string): TestProvider[] =>
        names.map((provider) => ({ name: provider, issuer }))
      const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], {
        idp: { signingKey },
        input: (issuer) => ({
          ...(before ? { identityProviders: providers(before, issuer) } : {}),
          ...(store === 'redis' ? { store: redis.url, keyPrefix: `${redis.prefix}${Math.random()}:` } : {}),
        }),
      })
      const logoutToken = () =>
        signLogoutToken(
          { issuer: stack.idp.issuer, audience: CLIENT_ID, key: privateKey, kid: 'idp-key' },
          { sub: 'alice' },
        )
      const token = await logoutToken()
      const post = (logout = token) =>
        jarFetch(new CookieJar(), `${stack.url}/auth/backchannel-logout`, {
          method: 'POST',
          body: new URLSearchParams({ logout_token: logout }),
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        })
      t.equal((await post()).status, 200, 'the token is taken once')
      t.equal((await post()).status, 400, 'and is a replay the second time')

      stack.configMap.write(
        configText({ ...stack.input, identityProviders: providers(after, stack.idp.issuer) }),
      )
      t.ok(
        await until(() => stack.running.config.identityProviders.map((p) => p.name).join() === after.join()),
        'the reload applies',
      )
      const replayed = await post()
      t.equal(replayed.status, 400, 'after the reload, it is a replay still')
      t.match(replayed.json(), { error: 'invalid_request', message: /already used/ })
      t.equal((await post(await logoutToken())).status, 200, 'while a new token of the client is taken')
    })
  }
}
