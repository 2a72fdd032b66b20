/**
 * Every command to Redis had a fixed 1 s budget: a Redis that answers in
 * more than that under load (a Cluster across zones, a busy managed
 * service) turned requests into 503s that a longer wait would have served,
 * with nothing an operator could set. `session.storeTimeout` is that
 * budget; the default stays 1 s.
 */
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { configProblems } from '../helpers/config-problems.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { startRedis } from '../helpers/redis.js'
import { pollUntil } from '../helpers/within.js'

/** A signed-in browser on a gateway whose every request reads a redis-server of its own. */
async function signedIn(t: Test, storeTimeout?: number) {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const stack = await startObservedStack(t, {
    config: {
      store: redis.url,
      keyPrefix: redis.prefix,
      localCache: 0,
      ...(storeTimeout === undefined ? {} : { storeTimeout }),
    },
  })
  const { jar } = await login(stack.gateway.url)
  t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders`)).status, 200, 'signed in')
  return { admin, jar, base: stack.gateway.url }
}

// Redis holds every client's commands this long: past the default budget,
// well within the raised one.
const PAUSE_MS = '3000'

t.test('a Redis slower than the default 1 s: 503, the session kept', async (t) => {
  const { admin, jar, base } = await signedIn(t)
  await admin.client('PAUSE', PAUSE_MS, 'ALL')
  const answer = await apiCall(jar, `${base}/api/orders`)
  t.equal(answer.status, 503)
  t.ok(answer.headers.get('retry-after'), 'with Retry-After')
  await admin.client('UNPAUSE')
  // The connection that owed a reply past twice the budget is made again first.
  await pollUntil(async () => (await apiCall(jar, `${base}/api/orders`)).status === 200)
  t.pass('the session kept: served again once Redis answers')
})

t.test('session.storeTimeout: 10s waits the slow Redis out and serves the request', async (t) => {
  const { admin, jar, base } = await signedIn(t, 10_000)
  await admin.client('PAUSE', PAUSE_MS, 'ALL')
  const answer = await apiCall(jar, `${base}/api/orders`)
  t.equal(answer.status, 200)
})

const SECRET = 's'.repeat(40)
const text = (storeTimeout: string) => `server:
  publicUrl: https://app.example.com
oidc:
  issuer: https://idp.example.com
  clientId: my-bff
  clientSecret: s
session:
  secret: \${SESSION_SECRET}
  store: redis://redis:6379/0
  storeTimeout: ${storeTimeout}
`

t.test('check: more than 0, at most 30s, named with its line', async (t) => {
  const env = { SESSION_SECRET: SECRET }
  t.same(configProblems(text('0'), env), [
    '10 session.storeTimeout: must be more than 0: every command to Redis has a timeout',
  ])
  t.same(configProblems(text('31s'), env), [
    '10 session.storeTimeout: must be at most 30s: every request may wait this long on a Redis that does not answer',
  ])
  t.equal(parseConfig(text('2500ms'), 'routes.yaml', env).session.storeTimeout, 2_500)
  t.equal(
    parseConfig(text('1s').replace(/ {2}storeTimeout.*\n/, ''), 'routes.yaml', env).session.storeTimeout,
    1_000,
    'default 1s',
  )
})
