import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route, SESSION_SECRET } from '../helpers/gateway.js'
import { apiCall, followLoginFlow, jarFetch, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { configText, startReloadable } from '../helpers/reloadable.js'

const OLD = SESSION_SECRET
const NEW = 'a-brand-new-session-secret-of-32-chars-or-more'

/**
 * docs/deployment.md's rotation by reload, `[old]`, then `[new, old]`,
 * then `[new]`, on a Redis store, with a sign-in at the IdP across each
 * step: its login-state cookie, sealed before the step, opens after it,
 * and the session it makes opens once the old secret is gone; a session
 * from before the rotation, used in between, is re-sealed and carries on,
 * and so does the gateway's client-credentials token.
 */
t.test(
  'a rotation of session.secrets by reload: sign-ins pending across each step complete, and sessions carry on',
  async (t) => {
    const redis = await startRedis()
    t.teardown(() => redis.stop())
    const stack = await startReloadable(
      t,
      (upstream) => [route('/api', upstream), route('/client', upstream, { token: 'client' })],
      { input: { store: redis.url, keyPrefix: redis.prefix, secrets: [OLD] } },
    )
    const rotate = async (secrets: string[]) => {
      stack.configMap.write(configText({ ...stack.input, secrets }))
      t.match(await stack.running.reload(), { result: 'applied' }, `secrets reloaded as ${secrets.length}`)
    }
    const atTheIdp = async (user: string) => {
      const jar = new CookieJar()
      const start = await jarFetch(jar, `${stack.url}/auth/login?returnTo=/`)
      return { jar, callback: await followLoginFlow(jar, start.location!, user) }
    }
    const before = (await login(stack.url)).jar
    const sealedWithOld = before.get(stack.url, 'gatehouse')!
    t.equal(
      (await apiCall(before, `${stack.url}/client/x`)).status,
      200,
      'a client token cached under the old secret',
    )
    const startedUnderOld = await atTheIdp('bob')

    await rotate([NEW, OLD])
    t.equal(
      (await jarFetch(startedUnderOld.jar, startedUnderOld.callback)).status,
      302,
      'a sign-in from before completes',
    )
    t.equal((await apiCall(before, `${stack.url}/api/x`)).status, 200, 'a session from before opens')
    t.not(before.get(stack.url, 'gatehouse'), sealedWithOld, 'and is sealed again, with the new secret')
    const startedUnderBoth = await atTheIdp('carol')

    await rotate([NEW])
    t.equal(
      (await jarFetch(startedUnderBoth.jar, startedUnderBoth.callback)).status,
      302,
      'so does one from the middle step',
    )
    for (const [jar, who] of [
      [before, 'the session from before the rotation'],
      [startedUnderOld.jar, 'the session whose sign-in began under the old secret'],
      [startedUnderBoth.jar, 'the session whose sign-in began under both'],
    ] as const)
      t.equal(
        (await apiCall(jar, `${stack.url}/api/x`)).status,
        200,
        `${who} opens with the new secret alone`,
      )
    t.equal((await apiCall(before, `${stack.url}/client/x`)).status, 200, 'the client route is served')
    const stale = new CookieJar()
    stale.set(stack.url, 'gatehouse', sealedWithOld)
    t.equal(
      (await apiCall(stale, `${stack.url}/api/x`)).status,
      401,
      'the cookie as the old secret sealed it opens nothing',
    )
  },
)
