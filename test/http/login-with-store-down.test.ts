import t, { type Test } from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { followLoginFlow, jarFetch, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { probeClient, startRedisSentinel } from '../helpers/redis-topology.js'
import { type StackOptions, startStack } from '../helpers/stack.js'
import { pollUntil } from '../helpers/within.js'

/**
 * A stack on a Redis of its own, and a sign-in taken to the IdP's redirect
 * back: the callback URL, which the test opens once it has made the store fail.
 */
async function atTheCallback(t: Test, idp: StackOptions['idp'] = {}) {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const lines: Record<string, unknown>[] = []
  const stack = await startStack(t, {
    idp,
    config: { store: redis.url, keyPrefix: redis.prefix, logLevel: 'info' },
    gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  })
  const jar = new CookieJar()
  const start = await jarFetch(jar, `${stack.gateway.url}/auth/login?returnTo=%2F`)
  const callbackUrl = await followLoginFlow(jar, start.location!, 'alice')
  return { redis, lines, stack, jar, callbackUrl }
}

// The code is redeemed before the session is stored: when the store then
// fails, the IdP has issued a refresh token that no session holds and no
// cookie can reach. Left alone, it would outlive the failed sign-in as a
// live grant at the IdP, for as long as the IdP lets refresh tokens live:
// so it is revoked, unless a session may share its grant. With the store
// down, no one can say whether one of another frontend does (its cookie
// never comes here), and revoking that grant would sign its user out.
t.test(
  'a sign-in whose session cannot be stored with the store down: 503 page, and the refresh token is kept, with a warning',
  async (t) => {
    if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
    const { redis, lines, stack, jar, callbackUrl } = await atTheCallback(t)
    const base = stack.gateway.url

    await redis.kill()
    const failed = await jarFetch(jar, callbackUrl, { headers: { accept: 'text/html' } })
    t.equal(failed.status, 503, 'the store is down: sign-in is unavailable')
    t.match(failed.text, /<!doctype html>/, 'a page')
    t.notOk(jar.get(base, 'gatehouse'), 'no session cookie')
    t.equal(stack.idp.stats.revokedGrants, 0, 'the grant a session elsewhere may hold is not revoked')
    t.match(
      lines.find((l) => /refresh token is not revoked/.test(String(l.msg))),
      { level: 40, code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE' },
      'a warning says why',
    )
    t.notOk(JSON.stringify(lines).includes(new URL(callbackUrl).searchParams.get('code')!), 'never the code')

    await redis.restart()
    await pollUntil(async () => (await jarFetch(new CookieJar(), `${base}/readyz`)).status === 200)
    const again = await login(base, { jar: new CookieJar() })
    t.equal(again.callback.status, 302, 'signing in again works once the store is back')
  },
)

/**
 * A stack on Redis with a replica, taken to the IdP's redirect back, and
 * the callback opened while the replica gets nothing: the session's write
 * is unconfirmed, and so no session, while the store still answers reads.
 */
async function unconfirmedSignIn(t: Test, idp: StackOptions['idp'] = {}) {
  const redis = await startRedisSentinel()
  t.teardown(() => redis.stop())
  const lines: Record<string, unknown>[] = []
  const stack = await startStack(t, {
    idp,
    config: { store: redis.url, keyPrefix: 'unconfirmed:', logLevel: 'info' },
    gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  })
  const base = stack.gateway.url
  const jar = new CookieJar()
  const start = await jarFetch(jar, `${base}/auth/login?returnTo=%2F`)
  const callbackUrl = await followLoginFlow(jar, start.location!, 'alice')

  // What the primary sends the replica is held: WAIT 1 cannot be met.
  redis.link.holdReplies()
  const failed = await jarFetch(jar, callbackUrl, { headers: { accept: 'text/html' } })
  redis.link.release()
  return { redis, lines, stack, jar, failed }
}

t.test(
  'a sign-in whose new session no replica confirms: 503, no record left behind on the primary, the refresh token revoked',
  async (t) => {
    const { redis, stack, jar, failed } = await unconfirmedSignIn(t)
    t.equal(failed.status, 503, 'an unconfirmed session is no session')
    t.notOk(jar.get(stack.gateway.url, 'gatehouse'), 'no session cookie')
    const primary = probeClient(await redis.currentPrimaryPort())
    await primary.connect()
    t.teardown(() => primary.disconnect())
    t.same(await primary.keys('unconfirmed:s:*'), [], 'the record the unconfirmed write made is gone')
    t.equal(stack.idp.stats.revokedGrants, 1, 'and its grant given back')
  },
)

t.test(
  'the same at an IdP without a revocation endpoint: the log says the refresh token could not be revoked, not that it was',
  async (t) => {
    const { lines, failed } = await unconfirmedSignIn(t, { quirks: { noRevocation: true } })
    t.equal(failed.status, 503)
    t.notOk(
      lines.some((l) => /refresh token was revoked/.test(String(l.msg))),
      'no line claims a revocation that never happened',
    )
    t.ok(
      lines.some((l) => /no revocation endpoint/.test(String(l.msg))),
      'one says why not',
    )
  },
)
