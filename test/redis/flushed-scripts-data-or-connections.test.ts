/**
 * What a Redis operator can do to a live gateway's store without stopping
 * it: flush its cached Lua scripts (`SCRIPT FLUSH`, as a restart does),
 * kill its connections (`CLIENT KILL`) while a refresh's answer is on its
 * way, or flush its data (`FLUSHALL`). None is an outage to wait out, and
 * none may cost more than it must: scripts are loaded again, a rotated
 * refresh token is still stored, and sessions flushed away are a clean
 * 401 that sends the SPA to sign in, never a 500.
 */
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { RedisSessionStore } from '../../src/session/redis-store.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { startRedis } from '../helpers/redis.js'

async function signedIn(t: Test) {
  const redis = await startRedis({ args: [] })
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const stack = await startObservedStack(t, {
    accessTokenTtl: 60,
    config: { store: redis.url, keyPrefix: redis.prefix },
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'signed in')
  stack.idp.resetStats()
  return { admin, stack, base, jar }
}

t.test('SCRIPT FLUSH: the next refresh and sign-out load their scripts again', async (t) => {
  const { admin, stack, base, jar } = await signedIn(t)
  await admin.script('FLUSH')
  stack.clock.advance(61_000)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'refreshed')
  t.equal(stack.idp.stats.refreshGrants, 1, 'once')
  await admin.script('FLUSH')
  const { logoutUrl } = (await apiCall(jar, `${base}/auth/user`)).json<{ logoutUrl: string }>()
  const out = await jarFetch(jar, `${base}${logoutUrl}`, { headers: { accept: 'text/html' } })
  t.equal(out.status, 200, 'signed out')
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 401, 'the session is over')
  t.notOk(
    stack.lines.some((line) => (line.level as number) >= 40),
    'nothing worth a warning: no request failed',
  )
})

t.test("CLIENT KILL of the gateway's connections while the IdP rotates the token", async (t) => {
  const { admin, stack, base, jar } = await signedIn(t)
  stack.clock.advance(61_000)
  stack.idp.holdTokenAnswers(async () => {
    const killed = Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes'))
    t.ok(killed > 0, `${killed} connections killed under the refresh lock`)
  })
  const answer = await apiCall(jar, `${base}/api/orders`)
  stack.idp.holdTokenAnswers()
  t.equal(answer.status, 200, 'the rotated token was stored over a new connection')
  stack.clock.advance(61_000)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'and redeemed at the next refresh')
  t.equal(stack.idp.stats.refreshGrants, 2)
  t.equal(stack.idp.stats.refreshReplays, 0, 'no refresh token presented twice')
  t.equal(stack.idp.stats.revokedGrants, 0)
})

t.test('FLUSHALL: a clean 401, never a 500, and signing in again works', async (t) => {
  const { admin, stack, base, jar } = await signedIn(t)
  await admin.flushall()
  // The local session cache hears of the flush on its own connection, a moment later, by design.
  const store = stack.gateway.app.gatehouse.stores.sessions
  if (store instanceof RedisSessionStore) await store.cache?.sync()
  const api = await apiCall(jar, `${base}/api/orders`)
  t.equal(api.status, 401, 'an API call: 401')
  t.equal(api.json().error, 'unauthenticated')
  t.equal((await apiCall(jar, `${base}/auth/user`)).status, 401, '/auth/user: 401')
  const again = await login(base)
  t.equal((await apiCall(again.jar, `${base}/api/orders`)).status, 200, 'a new sign-in is served')
  t.notOk(
    stack.lines.some((line) => (line.level as number) >= 50),
    'no error line',
  )
})
