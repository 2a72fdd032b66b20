import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { twoSessionsOfDave } from '../helpers/logout.js'
import { startRedis } from '../helpers/redis.js'
import { startStack } from '../helpers/stack.js'
import { pollUntil } from '../helpers/within.js'

/**
 * The IdP signs a user out while Redis is down: the gateway verified its
 * logout token and answered 503 with Retry-After, and waited for the
 * resend. oidc-provider (and Keycloak) deliver a logout token once and
 * never again, whatever the answer, so once the store was back the user's
 * sessions ran on, though the IdP had signed them out. A verified logout
 * the store could not carry out is now carried out by the gateway itself
 * once the store answers again.
 */
t.test('a logout token that came while the store was down is carried out once it is back', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const lines: Record<string, unknown>[] = []
  const { idp, gateway } = await startStack(t, {
    // No refresh falls due during the test: the IdP revokes the grant at its logout.
    accessTokenTtl: 600,
    backchannelLogout: true,
    routes: (upstream) => [route('/api/orders', upstream)],
    config: { store: redis.url, keyPrefix: redis.prefix, logLevel: 'info' },
    gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  })
  const base = gateway.url
  const alice = await login(base, { user: 'alice' })
  const bob = await login(base, { user: 'bob' })

  await redis.kill()
  const delivery = await idp.endSession('alice')
  t.same(
    { delivered: delivery.delivered, failed: delivery.failed },
    { delivered: 0, failed: 1 },
    'the IdP delivered once, was answered with an error, and will not send it again',
  )
  t.match(
    lines.find((line) => line.msg === 'back-channel logout owed'),
    { level: 40, idp: 'default' },
    'the operator hears that a logout waits for the store',
  )

  await redis.restart()
  await pollUntil(async () => (await jarFetch(new CookieJar(), `${base}/readyz`)).status === 200)
  await pollUntil(async () => (await apiCall(alice.jar, `${base}/api/orders`)).status === 401)
  t.pass("alice's session ended once the store was back, with no resend")
  t.equal((await apiCall(bob.jar, `${base}/api/orders`)).status, 200, "bob's session stays")
  t.match(
    lines.find((line) => line.msg === 'back-channel logout carried out once the store was back'),
    { level: 30, idp: 'default', ended: 1 },
  )
  t.notOk(
    lines.some((line) => /eyJ/.test(JSON.stringify(line))),
    'no token in the log',
  )
})

/**
 * An IdP that does send the token again, as the 503 asked, after the
 * gateway carried it out on its own: told it is done (200), and nothing
 * ended again, not even a session its user signed in to since; a copy
 * after that is a replay.
 */
t.test(
  'the resend of a logout the gateway carried out itself is answered done and ends nothing',
  async (t) => {
    if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
    const redis = await startRedis()
    t.teardown(() => redis.stop())
    const { base, store, post, ended } = await twoSessionsOfDave(t, {
      store: redis.url,
      keyPrefix: redis.prefix,
    })

    await redis.kill()
    const failed = await post()
    t.equal(failed.status, 503, 'the store is down')
    t.ok(Number(failed.headers.get('retry-after')) > 0, 'with Retry-After')
    await redis.restart()
    await pollUntil(ended)
    t.pass('both sessions ended with no resend')

    const anew = await login(base, { user: 'dave' })
    const resend = await post()
    t.equal(resend.status, 200, 'the resend is told the logout is done')
    t.same(resend.json(), { ended: 0 })
    t.equal((await apiCall(anew.jar, `${base}/api/orders`)).status, 200, 'the session signed in since stays')
    t.equal((await store.idsBySub('dave')).length, 1)
    const copy = await post()
    t.equal(copy.status, 400, 'a copy after that is a replay')
  },
)
