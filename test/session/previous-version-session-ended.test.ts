import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { sealedCookie, sessionRefOf } from '../helpers/app.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { apiCall, jarFetch, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { defaultRoutes, type StackOptions, startStack } from '../helpers/stack.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

let n = 0

/**
 * A signed-in user as the previous version left them: real tokens from a
 * real login, in a session hash written exactly as that version wrote it
 * (`data` and `tokens` as plaintext JSON, indexed by the plain sub and
 * sid), and a cookie that carries the record id and no key.
 */
async function previousVersionSession(t: Test, idp: StackOptions['idp'] = {}) {
  const prefix = `${redis.prefix}previous${++n}:`
  const lines: string[] = []
  const stack = await startStack(t, {
    idp,
    // `/api/scoped` redeems the session's refresh token at its first request.
    routes: (upstream) => [
      ...defaultRoutes(upstream),
      route('/api/scoped', upstream, { scopes: ['openid', 'offline_access'] }),
    ],
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

  /**
   * The record and its index entries are gone, its refresh token revoked
   * once (or, `revoked: false`, kept for the session that continues its
   * grant), and one line says so.
   */
  const ended = async (t: Test, revoked = true) => {
    t.equal(await admin.exists(`${prefix}s:{${id}}`), 0, 'the plaintext record is gone')
    t.equal(await admin.zcard(`${prefix}sub:{olga}`), 0, 'and its index entries')
    t.equal(await admin.zcard(`${prefix}sid:{${current.sid}}`), 0)
    if (revoked) {
      t.equal(stack.idp.stats.revocations, 1, 'the refresh token was revoked, once')
      t.equal((await stack.idp.introspect(current.tokens.refreshToken!)).active, false, 'it no longer works')
    } else {
      t.equal(stack.idp.stats.revocations, 0, 'the refresh token was not revoked')
      t.ok(
        lines.some((line) =>
          /session of the previous version ended: its refresh token is not revoked, since the new session may continue its grant/.test(
            line,
          ),
        ),
        'and a line says why',
      )
    }
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
  return { stack, base, jar, lines, admin, cookie, ended, sealedAfterLogin }
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

/**
 * Its grant goes as that of any session a sign-in replaces (the session
 * fixation row of docs/security.md): kept when the new session is of the
 * same user at the same client, which at an IdP that keeps or revokes one
 * grant per user (Keycloak, Auth0) holds it, even in another IdP session;
 * revoked when another user signs in over it.
 */
t.test('a user who signs in again with the old cookie still set ends the old session too', async (t) => {
  const { base, cookie, ended, sealedAfterLogin } = await previousVersionSession(t)
  const jar = new CookieJar()
  jar.set(base, 'gatehouse', cookie.slice('gatehouse='.length))
  await login(base, { user: 'olga', jar })
  await ended(t, false)
  await sealedAfterLogin(t, jar)
})

t.test(
  'another user who signs in over the old cookie ends the old session and revokes its grant',
  async (t) => {
    const { base, cookie, ended } = await previousVersionSession(t)
    const jar = new CookieJar()
    jar.set(base, 'gatehouse', cookie.slice('gatehouse='.length))
    t.equal((await login(base, { user: 'oscar', jar })).callback.status, 302)
    await ended(t)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'oscar is signed in')
  },
)

/**
 * Revoking a refresh token revokes its grant (RFC 7009 §2.1), and a
 * session of the new format may hold the same grant: the user's in another
 * browser at an IdP that keeps one grant per user (Keycloak, Auth0), or
 * the one a sign-in in the same browser just made (oidc-provider keeps one
 * grant per client in the IdP session). Until 2026-12-07 the previous
 * version's session was revoked without the weighing logout and a sign-in
 * over a live session do (`weighGrant`), and that other session's next
 * refresh answered 401.
 */
t.test(
  'ending a session of the previous version keeps the grant a session of the new format holds',
  async (t) => {
    const { stack, base, cookie, lines } = await previousVersionSession(t, { quirks: { grantPerUser: true } })
    const phone = await login(base, { user: 'olga' })
    t.equal(phone.callback.status, 302, 'olga signs in on her phone, at the grant of her old session')

    const out = await jarFetch(
      (() => {
        const laptop = new CookieJar()
        laptop.set(base, 'gatehouse', cookie.slice('gatehouse='.length))
        return laptop
      })(),
      `${base}/auth/logout?sid=handle`,
    )
    t.equal(out.status, 302, 'her laptop’s old cookie logs out: the session is ended and she is sent home')
    t.equal(stack.idp.stats.revokedGrants, 0, 'the grant is not revoked')
    t.ok(
      lines.some((line) =>
        /session of the previous version ended: its refresh token is not revoked, since another session of its user may share its grant/.test(
          line,
        ),
      ),
      'and the log says why',
    )
    const after = await apiCall(phone.jar, `${base}/api/scoped`)
    t.equal(after.status, 200, 'the phone’s session still refreshes', { body: after.text })
  },
)

t.test(
  'a sign-in over the previous version’s cookie, in the same IdP session, keeps the grant it continues',
  async (t) => {
    const { stack, base, jar, cookie } = await previousVersionSession(t)
    jar.set(base, 'gatehouse', cookie.slice('gatehouse='.length))
    const again = await login(base, { user: 'olga', jar })
    t.equal(again.callback.status, 302, 'olga signs in again in the browser of the old cookie')
    t.equal(
      stack.idp.stats.revokedGrants,
      0,
      'the grant of her IdP session, which the new session holds, is kept',
    )
    const after = await apiCall(jar, `${base}/api/scoped`)
    t.equal(after.status, 200, 'her new session refreshes', { body: after.text })
  },
)

/**
 * Whether another session shares the grant is read once the old record is
 * gone (the atomic delete hands its tokens to one request). A store that
 * then cannot answer that read (here an ACL takes ZRANGE, with which the
 * listing reads the user's index) leaves the grant alone: unknown is not
 * "none", and a grant no session holds lapses at the IdP by itself.
 */
t.test(
  'ending a session of the previous version while the store cannot say who shares its grant revokes nothing',
  async (t) => {
    const { stack, base, cookie, lines, admin } = await previousVersionSession(t, {
      quirks: { grantPerUser: true },
    })
    const phone = await login(base, { user: 'olga' })
    await admin.acl('SETUSER', 'default', '-zrange')
    const out = await fetch(`${base}/auth/user`, { headers: { cookie, 'x-csrf': '1' } })
    await admin.acl('SETUSER', 'default', '+zrange')
    t.equal(out.status, 401, 'the old session is over all the same', { body: await out.text() })
    t.equal(stack.idp.stats.revokedGrants, 0, 'the grant is not revoked')
    t.ok(
      lines.some((line) =>
        /session of the previous version ended: its refresh token is not revoked, since the session store could not be read/.test(
          line,
        ),
      ),
      'a warning says why',
    )
    const after = await apiCall(phone.jar, `${base}/api/scoped`)
    t.equal(after.status, 200, 'the phone’s session still refreshes', { body: after.text })
  },
)
