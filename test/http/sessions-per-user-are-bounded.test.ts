/**
 * `session.maxPerUser`. Every sign-in made a session record, with its
 * refresh token, and nothing bounded how many one user held: a user with
 * valid credentials who signed in again and again (a script, a client
 * that drops its cookie) grew the store by a record per sign-in, slowed
 * only by the per-address sign-in rate limit and the idle timeout. A
 * sign-in past the bound now ends the user's oldest session at that
 * frontend, as a logout would.
 */
import t, { type Test } from 'tap'
import { sessionLogId } from '../../src/session/log-id.js'
import { sessionRefOf } from '../helpers/app.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'
import { type StackOptions, startStack } from '../helpers/stack.js'
import { type FrontendChoices, startTwoFrontends } from '../helpers/two-frontends.js'
import { browserHeaders, closed, openSocket, wsUpstream, wsUrl } from '../helpers/websocket.js'

/** A gateway whose `/api/scoped` redeems the session's refresh token at its first request, and its log. */
async function boundedStack(t: Test, maxPerUser: number, options: StackOptions = {}) {
  const log = new LogLines()
  const stack = await startStack(t, {
    ...options,
    routes: (upstream) => [
      route('/api/orders', upstream),
      route('/api/scoped', upstream, { scopes: ['openid', 'offline_access'] }),
    ],
    config: { logLevel: 'info', maxPerUser, ...options.config },
    gateway: { logStream: log.stream, ...options.gateway },
  })
  const base = stack.gateway.url
  const app = stack.gateway.app
  /** `user` signs in in a browser of its own: a new IdP session, a new session here. */
  const signIn = async (user = 'alice') => {
    const { jar, callback } = await login(base, { user })
    t.equal(callback.status, 302, `${user} signed in`)
    return jar
  }
  const signedIn = async (jar: CookieJar) => (await apiCall(jar, `${base}/auth/user`)).status === 200
  const idOf = (jar: CookieJar) => sessionRefOf(app, jar.get(base, 'gatehouse')!).id
  const refreshTokenOf = async (jar: CookieJar) => {
    const ref = sessionRefOf(app, jar.get(base, 'gatehouse')!)
    return (await app.gatehouse.stores.sessions.get(ref, Date.now(), { touch: false }))!.tokens.refreshToken!
  }
  const ended = async () =>
    /gatehouse_sessions_over_bound_total\{result="ended",idp="default"\} (\d+)/.exec(
      await app.gatehouse.metrics.registry.metrics(),
    )?.[1]
  return { stack, base, app, log, signIn, signedIn, idOf, refreshTokenOf, ended }
}

t.test(
  'a user who signs in again and again holds at most maxPerUser sessions: the oldest ends',
  async (t) => {
    const { app, log, signIn, signedIn, idOf, ended } = await boundedStack(t, 2)
    const bob = await signIn('bob')
    const first = await signIn()
    const firstId = idOf(first)
    const second = await signIn()
    t.ok((await signedIn(first)) && (await signedIn(second)), 'two sessions: at the bound, both live')
    t.equal(await ended(), undefined, 'none ended')

    const third = await signIn()
    t.notOk(await signedIn(first), 'the third sign-in ended the oldest')
    t.ok((await signedIn(second)) && (await signedIn(third)), 'the two newest live on')
    t.ok(await signedIn(bob), 'another user’s session is not counted')
    t.equal(
      (await app.gatehouse.stores.sessions.idsBySub('alice')).length,
      2,
      'the store holds two of alice’s',
    )
    t.match(
      log.lines.find((line) => line.code === 'GATEHOUSE_SESSION_OVER_BOUND'),
      { level: 30, session: sessionLogId(firstId), maxPerUser: 2, idp: 'default', own: false },
      'an info line says which ended, and why',
    )
    t.equal(await ended(), '1', 'counted')

    await signIn()
    t.notOk(await signedIn(second), 'and the next sign-in ends the next oldest')
    t.ok(await signedIn(third), 'the newest lives on')
    t.equal(await ended(), '2')
  },
)

t.test('the ended session’s WebSocket closes with 4401, as at logout', async (t) => {
  const upstream = await wsUpstream(t)
  const stack = await startStack(t, {
    routes: () => [route('/live', upstream.url, { websocket: true })],
    config: { maxPerUser: 1 },
    gateway: { websocketRecheck: 50 },
  })
  const { jar } = await login(stack.gateway.url)
  const socket = await openSocket(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar))
  t.teardown(() => socket.terminate())
  const end = closed(socket)
  t.equal((await login(stack.gateway.url)).callback.status, 302, 'alice signs in elsewhere')
  t.same(await end, { code: 4401, reason: 'session ended' })
})

// The oldest session is of the user signing in, so the new one may die with
// its grant: Keycloak's revocation of a refresh token ends the client's
// sessions of the user in every IdP session, and Auth0's may delete the
// user's grant, though both name IdP sessions. Its grant runs out at the IdP.
t.test('with sids, the ended session’s grant is kept: revoking it may end the new session', async (t) => {
  // Registered for back-channel logout, the client is told the IdP session (`sid`) in every ID token.
  const { stack, base, log, signIn, signedIn, refreshTokenOf } = await boundedStack(t, 1, {
    backchannelLogout: true,
  })
  const first = await signIn()
  const token = await refreshTokenOf(first)
  const second = await signIn()
  t.notOk(await signedIn(first), 'the oldest session ended')
  t.equal(stack.idp.stats.revokedGrants, 0, 'its grant is not revoked')
  t.equal((await stack.idp.introspect(token)).active, true, 'its refresh token runs out at the IdP')
  t.ok(
    log.lines.find((line) =>
      /beyond session\.maxPerUser: its refresh token is not revoked, since the new session may continue/.test(
        String(line.msg),
      ),
    ),
    'and the log says why',
  )
  const after = await apiCall(second, `${base}/api/scoped`)
  t.equal(after.status, 200, 'the new session refreshes', { body: after.text })
})

t.test('the grant is kept while a live session may share it', async (t) => {
  const { stack, base, log, signIn, refreshTokenOf } = await boundedStack(t, 1, { backchannelLogout: true })
  const browser = await signIn()
  const token = await refreshTokenOf(browser)
  // The same IdP session signs alice in once more without the gateway's
  // cookie: the new session continues the same grant (oidc-provider keeps
  // one per client in the IdP session), and ends the old session.
  browser.delete(base, 'gatehouse')
  t.equal((await login(base, { jar: browser })).callback.status, 302, 'alice signs in again')
  t.equal(stack.idp.stats.revokedGrants, 0, 'the grant the new session holds is not revoked')
  t.equal((await stack.idp.introspect(token)).active, true, 'its refresh token lives on')
  t.ok(
    log.lines.find((line) =>
      /beyond session\.maxPerUser: its refresh token is not revoked, since the new session may continue/.test(
        String(line.msg),
      ),
    ),
    'the old session ended, and the log says why its grant was kept',
  )
  const after = await apiCall(browser, `${base}/api/scoped`)
  t.equal(after.status, 200, 'and the new session refreshes', { body: after.text })
})

t.test(
  'in Redis the ended session’s refresh token is sealed with its cookie’s key: not revoked',
  async (t) => {
    if (process.env.REDIS_URL) return t.plan(0, 'needs a redis-server of its own')
    const redis = await startRedis()
    t.teardown(() => redis.stop())
    const { stack, log, signIn, signedIn } = await boundedStack(t, 1, {
      backchannelLogout: true,
      config: { store: redis.url, keyPrefix: redis.prefix },
    })
    const first = await signIn()
    await signIn()
    t.notOk(await signedIn(first), 'the oldest ended')
    t.equal(stack.idp.stats.revokedGrants, 0, 'no token at hand to revoke')
    t.match(
      log.lines.find((line) => line.code === 'GATEHOUSE_SESSION_OVER_BOUND'),
      { msg: /sealed with a key only its own cookie carries, so it is not revoked/ },
    )
  },
)

t.test('a store that cannot answer keeps the sign-in; the next sign-in ends what is over', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
  const redis: TestRedis = await startRedis()
  t.teardown(() => redis.stop())
  const { app, log, signIn, signedIn } = await boundedStack(t, 1, {
    config: { store: redis.url, keyPrefix: redis.prefix },
  })
  const store = app.gatehouse.stores.sessions
  const list = store.sessionsOfUser.bind(store)
  let freeze = false
  // The new session is stored; Redis stops answering as the bound is read.
  store.sessionsOfUser = (...args) => {
    if (freeze) redis.freeze()
    return list(...args)
  }
  const first = await signIn()
  freeze = true
  const second = await signIn()
  freeze = false
  redis.resume()
  t.ok((await signedIn(first)) && (await signedIn(second)), 'the sign-in landed; nothing was ended')
  t.match(
    log.lines.find((line) => line.code === 'GATEHOUSE_SESSION_BOUND_UNCHECKED'),
    { level: 40, error: 'GATEHOUSE_ERR_STORE_UNAVAILABLE' },
    'a warning says why',
  )
  t.match(
    await app.gatehouse.metrics.registry.metrics(),
    /gatehouse_sessions_over_bound_total\{result="unchecked",idp="default"\} 1/,
    'and it is counted',
  )
  const third = await signIn()
  t.notOk((await signedIn(first)) || (await signedIn(second)), 'the next sign-in ends both that are over')
  t.ok(await signedIn(third), 'the newest lives on')
})

/** Both frontends sign in at corp. */
const bothAtCorp: FrontendChoices = () => ({
  staff: { identityProviders: ['corp'], routes: [] },
  partners: { identityProviders: ['corp'], routes: [] },
})

t.test('the bound is per frontend: a sign-in at one never ends the user’s session at another', async (t) => {
  const s = await startTwoFrontends(t, bothAtCorp, { config: { maxPerUser: 1 } })
  const signedIn = async (jar: CookieJar, at: string) =>
    (await apiCall(jar, `${at}/auth/user`)).status === 200
  const staff = (await login(s.staff)).jar
  const partners = (await login(s.partners)).jar
  t.ok((await signedIn(staff, s.staff)) && (await signedIn(partners, s.partners)), 'one at each')
  const again = (await login(s.staff)).jar
  t.notOk(await signedIn(staff, s.staff), 'a second at staff ends the first there')
  t.ok(await signedIn(again, s.staff))
  t.ok(await signedIn(partners, s.partners), 'and leaves the one at partners')
})

t.test('through a reload: the new bound holds at the next sign-in, the oldest first', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'needs a redis-server of its own')
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], {
    input: { store: redis.url, keyPrefix: redis.prefix, maxPerUser: 3 },
  })
  const signedIn = async (jar: CookieJar) => (await apiCall(jar, `${stack.url}/auth/user`)).status === 200
  const before = []
  for (let i = 0; i < 3; i++) before.push((await login(stack.url)).jar)
  // A shorter absoluteTimeout gives sessions made after it an earlier
  // absolute expiry (the index score) than those made before: the oldest
  // is the one made first, not the one that expires first.
  stack.configMap.write(configText({ ...stack.input, maxPerUser: 2, absoluteTimeout: 3_600_000 }))
  t.match(await stack.running.reload(), { result: 'applied' })
  const after = (await login(stack.url)).jar
  t.ok(await signedIn(after), 'the sign-in after the reload lives')
  t.same(
    await Promise.all(before.map(signedIn)),
    [false, false, true],
    'the two made first ended: the new bound is 2',
  )
})

t.test('a browser that keeps no cookie signing in 40 times leaves the bound in the store', async (t) => {
  const { app, signIn } = await boundedStack(t, 5)
  const browser = new CookieJar()
  for (let i = 0; i < 40; i++) {
    // The IdP session stays; the gateway's cookie is dropped each time, as a script would.
    browser.delete(app.gatehouse.config.server.publicUrl, 'gatehouse')
    await login(app.gatehouse.config.server.publicUrl, { jar: browser })
  }
  await signIn()
  t.equal((await app.gatehouse.stores.sessions.idsBySub('alice')).length, 5, 'five sessions, not 41')
})
