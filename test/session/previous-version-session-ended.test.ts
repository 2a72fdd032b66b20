import { Redis } from 'ioredis'
import t from 'tap'
import { sealedCookie, sessionRefOf } from '../helpers/app.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { startStack } from '../helpers/stack.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

/**
 * The previous version kept a session's tokens in the clear and its cookie
 * carried the record id alone. Such a session is ended, not used: record
 * and index entries deleted, refresh token revoked, the user asked to sign
 * in again. The record is written here exactly as that version wrote it.
 */
t.test('a session the previous version wrote is ended cleanly and its refresh token revoked', async (t) => {
  const prefix = `${redis.prefix}previous:`
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

  // Real tokens from a real login, moved into a record of the old format.
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
    .hset(
      `${prefix}s:{${id}}`,
      'data',
      JSON.stringify(data),
      'tokens',
      JSON.stringify(current.tokens),
      'v',
      '0',
      'idle',
      String(now + 1_800_000),
    )
    .pexpireat(`${prefix}s:{${id}}`, now + 1_800_000)
    .exec()
  const oldCookie = sealedCookie(app, { id })
  t.ok(await stack.idp.isActive(current.tokens.accessToken), 'the IdP still knows the grant')
  stack.idp.resetStats()

  // A SPA fires several calls at once with the old cookie.
  const answers = await Promise.all(
    Array.from({ length: 10 }, () =>
      fetch(`${base}/api/orders`, { headers: { cookie: oldCookie, 'x-csrf': '1' } }),
    ),
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

  t.equal(await admin.exists(`${prefix}s:{${id}}`), 0, 'the plaintext record is gone')
  t.equal(await admin.zcard(`${prefix}sub:{olga}`), 0, 'and its index entries')
  t.equal(await admin.zcard(`${prefix}sid:{${current.sid}}`), 0)
  t.equal(stack.idp.stats.revocations, 1, 'the refresh token was revoked, once')
  t.equal((await stack.idp.introspect(current.tokens.refreshToken!)).active, false, 'it no longer works')
  const ended = lines.filter((line) => line.includes('GATEHOUSE_SESSION_PREVIOUS_FORMAT'))
  t.equal(ended.length, 1, 'one line says so')
  t.match(JSON.parse(ended[0]!), { level: 30 })
  t.notOk(lines.join('').includes(current.tokens.refreshToken!), 'no token in the log')

  const again = await fetch(`${base}/auth/user`, { headers: { cookie: oldCookie, 'x-csrf': '1' } })
  t.equal(again.status, 401, 'the old cookie opens nothing afterwards')

  // Signing in again gives a sealed session that works.
  const fresh = await login(base, { user: 'olga' })
  t.equal((await apiCall(fresh.jar, `${base}/api/orders`)).status, 200, 'the user signs in again')
  const record = await admin.hgetall(
    `${prefix}s:{${sessionRefOf(app, fresh.jar.get(base, 'gatehouse')!).id}}`,
  )
  t.notOk('data' in record, 'in the new format')
  t.match(record.tokens, /^a1\.s1\./)
})
