import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { sealedCookie, sessionRefOf } from '../helpers/app.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startStack } from '../helpers/stack.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

let n = 0

/**
 * A signed-in user as the previous version left them: real tokens from a
 * real login, in a session hash written exactly as that version wrote it
 * (`data` and `tokens` as plaintext JSON, indexed by the plain sub and
 * sid), and a cookie that carries the record id and no key.
 */
async function previousVersionSession(t: Test) {
  const prefix = `${redis.prefix}previous${++n}:`
  const lines: string[] = []
  const stack = await startStack(t, {
    config: { store: redis.url, keyPrefix: prefix, logLevel: 'info' },
    gateway: { logStream: { write: (line: string) => void lines.push(line) } },
    backchannelLogout: true,
  })
  const base = stack.gateway.url
  const { app } = stack.gateway
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())

  const { jar } = await login(base, { user: 'olga' })
  const current = (await app.gatehouse.stores.sessions.get(
    sessionRefOf(app, jar.get(base, 'gatehouse')!),
    Date.now(),
  ))!
  t.ok(current.tokens.refreshToken && current.sid, 'the login has a refresh token and an IdP session')
  await app.gatehouse.stores.sessions.delete(current.id)
  const id = 'previous-version-session-id-of-43-characters'
  const now = Date.now()
  const data = {
    sub: current.sub,
    sid: current.sid,
    claims: current.claims,
    createdAt: now,
    absoluteExpiresAt: now + 3_600_000,
    logoutHandle: 'handle',
  }
  await admin
    .multi()
    .zadd(`${prefix}sub:{olga}`, now + 3_600_000, id)
    .zadd(`${prefix}sid:{${current.sid}}`, now + 3_600_000, id)
    .hset(`${prefix}s:{${id}}`, {
      data: JSON.stringify(data),
      tokens: JSON.stringify(current.tokens),
      v: '0',
      idle: String(now + 1_800_000),
    })
    .pexpireat(`${prefix}s:{${id}}`, now + 1_800_000)
    .exec()
  const cookie = sealedCookie(app, { id })
  t.ok(await stack.idp.isActive(current.tokens.accessToken), 'the IdP still knows the grant')
  stack.idp.resetStats()

  /** The record and its index entries are gone, its refresh token revoked once, and one line says so. */
  const ended = async (t: Test) => {
    t.equal(await admin.exists(`${prefix}s:{${id}}`), 0, 'the plaintext record is gone')
    t.equal(await admin.zcard(`${prefix}sub:{olga}`), 0, 'and its index entries')
    t.equal(await admin.zcard(`${prefix}sid:{${current.sid}}`), 0)
    t.equal(stack.idp.stats.revocations, 1, 'the refresh token was revoked, once')
    t.equal((await stack.idp.introspect(current.tokens.refreshToken!)).active, false, 'it no longer works')
    const said = lines.filter((line) => line.includes('GATEHOUSE_SESSION_PREVIOUS_FORMAT'))
    t.equal(said.length, 1, 'one line says so')
    t.match(JSON.parse(said[0]!), { level: 30 })
    t.notOk(lines.join('').includes(current.tokens.refreshToken!), 'no token in the log')
  }
  /** Signed in again, the user has a session of the new format that works. */
  const sealedAfterLogin = async (t: Test, jar: CookieJar) => {
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'the user is signed in again')
    const record = await admin.hgetall(`${prefix}s:{${sessionRefOf(app, jar.get(base, 'gatehouse')!).id}}`)
    t.notOk('data' in record, 'in the new format')
    t.match(record.tokens, /^a1\.s1\./)
  }
  return { stack, base, cookie, ended, sealedAfterLogin }
}

t.test('a session the previous version wrote is ended cleanly and its refresh token revoked', async (t) => {
  const { base, cookie, ended, sealedAfterLogin } = await previousVersionSession(t)

  // A SPA fires several calls at once with the old cookie.
  const answers = await Promise.all(
    Array.from({ length: 10 }, () => fetch(`${base}/api/orders`, { headers: { cookie, 'x-csrf': '1' } })),
  )
  t.same(
    answers.map((a) => a.status),
    Array(10).fill(401),
    'every call: 401',
  )
  t.same(
    await Promise.all(answers.map(async (a) => ((await a.json()) as { error: string }).error)),
    Array(10).fill('unauthenticated'),
  )
  t.ok(
    answers.every((a) => /gatehouse=;/.test(a.headers.getSetCookie().join('\n'))),
    'each clears the cookie',
  )
  await ended(t)

  const again = await fetch(`${base}/auth/user`, { headers: { cookie, 'x-csrf': '1' } })
  t.equal(again.status, 401, 'the old cookie opens nothing afterwards')
  await sealedAfterLogin(t, (await login(base, { user: 'olga' })).jar)
})

t.test('a user who signs in again with the old cookie still set ends the old session too', async (t) => {
  const { base, cookie, ended, sealedAfterLogin } = await previousVersionSession(t)
  const jar = new CookieJar()
  jar.set(base, 'gatehouse', cookie.slice('gatehouse='.length))
  await login(base, { user: 'olga', jar })
  await ended(t)
  await sealedAfterLogin(t, jar)
})
