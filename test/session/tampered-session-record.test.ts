import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import { startEchoUpstream } from '../../dev/upstream.js'
import { SessionKey } from '../../src/session/session-key.js'
import { buildTestApp, sealedCookie, seedSession } from '../helpers/app.js'
import { route } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

/**
 * Someone with write access to Redis, but not to a user's browser, edits a
 * session: moves a victim's record to an id whose cookie they hold, swaps
 * sealed fields, or changes a byte. Each is refused like a forged cookie:
 * 401, the cookie cleared, one warning without the value, never a 500.
 */
t.test('a tampered or moved session record gets a 401 and a warning, never a 500', async (t) => {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const lines: string[] = []
  const prefix = `${redis.prefix}tamper:`
  const app = await buildTestApp(
    t,
    { routes: [route('/api/orders', upstream.url)], store: redis.url, keyPrefix: prefix, logLevel: 'info' },
    { logStream: { write: (line: string) => void lines.push(line) } },
  )
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  const hash = (id: string) => `${prefix}s:{${id}}`
  const call = (cookie: string) => app.inject({ url: '/api/orders', headers: { cookie, 'x-csrf': '1' } })

  const victim = await seedSession(app, {
    tokens: {
      accessToken: 'victim-access-token',
      accessTokenExpiresAt: Date.now() + 60_000,
      refreshToken: 'victim-refresh-token',
    },
  })
  const attacker = await seedSession(app)
  t.equal((await call(victim.cookie)).statusCode, 200, 'each cookie opens its own session')
  t.equal((await call(attacker.cookie)).statusCode, 200)
  const sealedValues = Object.values(await admin.hgetall(hash(victim.session.id))).filter((v) =>
    v.startsWith('a1.'),
  )
  t.equal(sealedValues.length, 2, 'login and tokens are sealed')

  const cases: [string, () => Promise<string>][] = [
    [
      "the victim's record copied over the attacker's",
      async () => {
        await admin.copy(hash(victim.session.id), hash(attacker.session.id), 'REPLACE')
        return attacker.cookie
      },
    ],
    [
      "the victim's tokens put in the attacker's record",
      async () => {
        const fresh = await seedSession(app)
        await admin.hset(
          hash(fresh.session.id),
          'tokens',
          (await admin.hget(hash(victim.session.id), 'tokens'))!,
        )
        return fresh.cookie
      },
    ],
    [
      'the sealed login fields and tokens swapped',
      async () => {
        const fresh = await seedSession(app)
        const [login, tokens] = await admin.hmget(hash(fresh.session.id), 'login', 'tokens')
        await admin.hset(hash(fresh.session.id), 'login', tokens!, 'tokens', login!)
        return fresh.cookie
      },
    ],
    [
      'a character of the sealed tokens changed',
      async () => {
        const fresh = await seedSession(app)
        const tokens = (await admin.hget(hash(fresh.session.id), 'tokens'))!
        const i = tokens.length - 10
        await admin.hset(
          hash(fresh.session.id),
          'tokens',
          tokens.slice(0, i) + (tokens[i] === 'A' ? 'B' : 'A') + tokens.slice(i + 1),
        )
        return fresh.cookie
      },
    ],
    [
      'the sealed tokens deleted',
      async () => {
        const fresh = await seedSession(app)
        await admin.hdel(hash(fresh.session.id), 'tokens')
        return fresh.cookie
      },
    ],
    [
      'plaintext tokens written in place of the sealed ones',
      async () => {
        const fresh = await seedSession(app)
        await admin.hset(
          hash(fresh.session.id),
          'tokens',
          JSON.stringify({ accessToken: 'planted', accessTokenExpiresAt: Date.now() + 60_000 }),
        )
        return fresh.cookie
      },
    ],
  ]
  for (const [name, tamper] of cases) {
    const before = lines.length
    const res = await call(await tamper())
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().error, 'unauthenticated', name)
    t.match(res.headers['set-cookie'], /gatehouse=;/, `${name}: the cookie is cleared`)
    const logged = requestLines(lines.slice(before))
    t.same(
      logged.map((l) => [l.level, l.code]),
      [[40, 'GATEHOUSE_SESSION_UNREADABLE']],
      `${name}: one warning, nothing else`,
    )
    for (const value of sealedValues)
      t.notOk(lines.slice(before).join('').includes(value), `${name}: no sealed value logged`)
  }
  t.same(
    await unreadableCounted(app),
    { refused: 4, malformed: 2 },
    'each refusal is counted by its reason, for an alert: nothing but Gatehouse writes these records',
  )
  t.equal((await call(victim.cookie)).statusCode, 200, "the victim's own cookie still works")
  t.equal(
    upstream.requests.filter((r) => r.authorization === 'Bearer victim-access-token').length,
    2,
    "the victim's token went only with the victim's cookie",
  )
  t.notOk(lines.join('').includes('victim-'), 'no token logged')
  t.same(
    requestLines(lines).filter((l) => Number(l.level) >= 50),
    [],
    'no request logged an error',
  )

  const garbled = await seedSession(app)
  await admin.hset(hash(garbled.session.id), 'ix', 'not json')
  await app.gatehouse.stores.sessions.delete(garbled.session.id)
  t.equal(
    await admin.exists(hash(garbled.session.id)),
    0,
    'a record whose clear fields were changed can still be deleted',
  )

  const nobody = sealedCookie(app, { key: SessionKey.generate().toCookie() })
  t.equal((await call(nobody)).statusCode, 401, 'a sealed cookie with a key of no session: 401')
  t.equal((await call(sealedCookie(app, { key: 'not-a-key' }))).statusCode, 401, 'a malformed key: 401')
})

/**
 * The clear fields (`v`, `idle`, `abs`) are not sealed: the touch and
 * compare-and-set scripts read them inside Redis. A record whose clear
 * fields are not what the gateway writes (changed by hand, or garbled) is
 * refused like a changed seal, on every route. Until 2026-12-06 a
 * non-numeric expiry answered /auth/user with a 500 and an error-level
 * stack (`Invalid time value`) while the API served the session on, and a
 * non-numeric or missing version let a refresh spend the refresh token,
 * fail its compare-and-set, and replay it on the next request, which made
 * the IdP revoke the grant.
 */
t.test('clear fields that are not numbers get a 401 and a warning, never a 500', async (t) => {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const lines: string[] = []
  const prefix = `${redis.prefix}clear-fields:`
  const app = await buildTestApp(
    t,
    { routes: [route('/api/orders', upstream.url)], store: redis.url, keyPrefix: prefix, logLevel: 'info' },
    { logStream: { write: (line: string) => void lines.push(line) } },
  )
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  const hash = (id: string) => `${prefix}s:{${id}}`

  const cases: [string, (key: string) => Promise<unknown>][] = [
    ['the idle expiry not a number', (key) => admin.hset(key, 'idle', 'garbage')],
    ['the absolute expiry not a number', (key) => admin.hset(key, 'abs', 'garbage')],
    ['both expiries past any date', (key) => admin.hset(key, 'idle', '1e300', 'abs', '1e300')],
    ['the version not a number', (key) => admin.hset(key, 'v', 'garbage')],
    ['the version deleted', (key) => admin.hdel(key, 'v')],
  ]
  for (const [name, tamper] of cases) {
    const { session, cookie } = await seedSession(app)
    await tamper(hash(session.id))
    for (const url of ['/api/orders', '/auth/user']) {
      const before = lines.length
      const res = await app.inject({ url, headers: { cookie, 'x-csrf': '1' } })
      t.equal(res.statusCode, 401, `${name}: ${url}`)
      t.equal(res.json().error, 'unauthenticated', `${name}: ${url}`)
      t.same(
        requestLines(lines.slice(before)).map((l) => [l.level, l.code, l.reason]),
        [[40, 'GATEHOUSE_SESSION_UNREADABLE', 'malformed']],
        `${name}: ${url}: one warning, nothing else`,
      )
    }
  }
  t.same(await unreadableCounted(app), { malformed: 2 * cases.length }, 'each counted')
  t.equal(upstream.requests.length, 0, 'no request went upstream with such a record')
})

/** `gatehouse_sessions_unreadable_total` by reason, as the metrics endpoint shows it. */
async function unreadableCounted(app: FastifyInstance): Promise<Record<string, number>> {
  const text = await app.gatehouse.metrics.registry.metrics()
  return Object.fromEntries(
    [...text.matchAll(/^gatehouse_sessions_unreadable_total\{reason="([^"]+)"\} (\d+)$/gm)].map((m) => [
      m[1]!,
      Number(m[2]),
    ]),
  )
}

/** Lines logged while serving a request (the unreachable test IdP's retries are not). */
function requestLines(lines: readonly string[]): Record<string, unknown>[] {
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((l) => 'reqId' in l)
}
