import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { Client } from 'undici'
import type { Stores } from '../../src/server/stores.js'
import { MemorySessionStore } from '../../src/session/memory-store.js'
import { OpenedCookies } from '../../src/session/opened-cookies.js'
import { MemoryLockService } from '../../src/tokens/memory-lock.js'
import { MemoryRefreshCooldowns } from '../../src/tokens/refresh-cooldown.js'
import { MemoryReplayCache } from '../../src/tokens/replay-cache.js'
import { buildTestApp, seedSession } from '../helpers/app.js'

/** A clock the test moves, epoch ms. */
function clock() {
  const c = { now: Date.now(), read: () => c.now }
  return c
}

function user(app: FastifyInstance, cookie: string) {
  return app.inject({ url: '/auth/user', headers: { cookie, 'x-csrf': '1' } })
}

/** The sealed value a `cookie` header carries, as the cache is keyed. */
function sealedOf(app: FastifyInstance, cookie: string): string {
  return app.parseCookie(cookie)[app.gatehouse.config.session.cookieName]!
}

/** Stores two gateways share, as two instances share Redis. */
function sharedStores(now: () => number): Stores {
  return {
    sessions: new MemorySessionStore({ idleTimeoutMs: 30 * 60_000, clock: now }),
    locks: new MemoryLockService(),
    replay: new MemoryReplayCache(now),
    cooldowns: new MemoryRefreshCooldowns(now),
    close: async () => {},
  }
}

async function appWith(t: Test, time: ReturnType<typeof clock>, stores?: Stores) {
  return buildTestApp(t, {}, { now: time.read, ...(stores ? { stores } : {}) })
}

t.test('an opened cookie is served no later than its session idle expiry', async (t) => {
  const time = clock()
  const app = await appWith(t, time)
  const { session, cookie } = await seedSession(app)
  t.equal((await user(app, cookie)).statusCode, 200)
  // The read slid the idle expiry: the session as it now stands.
  const read = (await app.gatehouse.sessions.store.get(session, time.now, { touch: false }))!
  t.ok(read.idleExpiresAt < read.absoluteExpiresAt, 'the idle expiry comes first')
  const sealed = sealedOf(app, cookie)
  const entry = app.sealedCookies.opened.get(sealed, time.now)
  t.ok(entry, 'the opened cookie is kept')
  t.ok(entry!.until <= read.idleExpiresAt, 'bounded by the session it names, as read')
  time.now = read.idleExpiresAt
  t.equal(
    app.sealedCookies.opened.get(sealed, time.now),
    undefined,
    'not served once the session is idle-expired',
  )
  t.equal((await user(app, cookie)).statusCode, 401, 'and the session is over')
})

t.test('an opened cookie is served no later than its session absolute expiry', async (t) => {
  const time = clock()
  const app = await appWith(t, time)
  const { session, cookie } = await seedSession(app, { absoluteExpiresAt: time.now + 30_000 })
  t.equal((await user(app, cookie)).statusCode, 200)
  const sealed = sealedOf(app, cookie)
  t.ok(app.sealedCookies.opened.get(sealed, time.now)!.until <= session.absoluteExpiresAt)
  time.now = session.absoluteExpiresAt
  t.equal(app.sealedCookies.opened.get(sealed, time.now), undefined, 'not served past the absolute expiry')
  t.equal((await user(app, cookie)).statusCode, 401)
})

t.test('logout drops the opened cookie, and the cookie opens no session after', async (t) => {
  const time = clock()
  const app = await appWith(t, time)
  const { session, cookie } = await seedSession(app, {
    tokens: { accessToken: 'A1', accessTokenExpiresAt: time.now + 60_000 },
  })
  t.equal((await user(app, cookie)).statusCode, 200)
  const sealed = sealedOf(app, cookie)
  t.ok(app.sealedCookies.opened.get(sealed, time.now), 'opened and kept')
  await app.inject({ url: `/auth/logout?sid=${session.logoutHandle}`, headers: { cookie } })
  t.equal(app.sealedCookies.opened.get(sealed, time.now), undefined, 'dropped at logout')
  t.equal((await user(app, cookie)).statusCode, 401, 'the same cookie is signed out')
})

t.test(
  'a session ended by another instance (back-channel logout) ends here at once, cache or not',
  async (t) => {
    const time = clock()
    const stores = sharedStores(time.read)
    const here = await appWith(t, time, stores)
    const there = await appWith(t, time, stores)
    const { session, cookie } = await seedSession(here)
    t.equal((await user(here, cookie)).statusCode, 200)
    t.equal((await user(there, cookie)).statusCode, 200, 'both instances opened and kept the cookie')
    const sealed = sealedOf(here, cookie)
    t.ok(here.sealedCookies.opened.get(sealed, time.now))
    // What back-channel logout does once the IdP's token checks out.
    for (const id of await there.gatehouse.sessions.store.idsBySub(session.sub))
      await there.gatehouse.sessions.store.delete(id)
    t.equal((await user(here, cookie)).statusCode, 401, 'the other instance sees the session gone')
    t.equal(here.sealedCookies.opened.get(sealed, time.now), undefined, 'and drops its opened cookie')
  },
)

t.test('a cached opening is never handed to another cookie', async (t) => {
  const time = clock()
  const app = await appWith(t, time)
  const users = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      seedSession(app, { sub: `user-${i}`, claims: { name: `User ${i}` } }),
    ),
  )
  // Interleaved and concurrent, twice: the second pass is served from the cache.
  for (let pass = 0; pass < 2; pass++) {
    const answers = await Promise.all(users.map(({ cookie }) => user(app, cookie)))
    for (const [i, answer] of answers.entries())
      t.equal(answer.json().sub, `user-${i}`, `pass ${pass}: user ${i} sees only itself`)
  }
  // One character of a cached value changed: not the cached entry, and it does not open.
  const sealed = sealedOf(app, users[0]!.cookie)
  const i = sealed.length >> 1
  const altered = sealed.slice(0, i) + (sealed[i] === 'A' ? 'B' : 'A') + sealed.slice(i + 1)
  const name = app.gatehouse.config.session.cookieName
  t.equal(
    (await user(app, `${name}=${encodeURIComponent(altered)}`)).statusCode,
    401,
    'an altered value is refused',
  )
  t.equal(app.sealedCookies.opened.get(altered, time.now), undefined, 'and never cached')
})

t.test(
  'the cache of opened cookies holds a bounded number of entries, least recently used out',
  async (t) => {
    const opened = new OpenedCookies(3)
    const entry = () => ({
      data: {},
      expiresAt: Date.now() + 60_000,
      until: Date.now() + 60_000,
      derived: undefined,
    })
    for (let i = 0; i < 10; i++) opened.set(`v${i}`, entry())
    t.equal(opened.size, 3)
    t.ok(opened.get('v9', Date.now()))
    t.equal(opened.get('v0', Date.now()), undefined, 'the oldest went first')
  },
)

t.test("the gateway's cache stays at its bound however many cookies it opens", async (t) => {
  const time = clock()
  const app = await appWith(t, time)
  const { OPENED_COOKIES_MAX } = await import('../../src/session/cookies.js')
  t.ok(OPENED_COOKIES_MAX > 0 && OPENED_COOKIES_MAX <= 100_000, `bound: ${OPENED_COOKIES_MAX}`)
  const users = await Promise.all(Array.from({ length: 20 }, () => seedSession(app)))
  for (const { cookie } of users) await user(app, cookie)
  t.equal(app.sealedCookies.opened.size, 20, 'one entry per cookie opened')
  for (const { cookie } of users) await user(app, cookie)
  t.equal(app.sealedCookies.opened.size, 20, 'the same cookies again add none')
})

/** Counts the session plugin's Cookie-header parses while `fn` runs. */
async function parsesDuring(app: FastifyInstance, fn: () => Promise<unknown>): Promise<number> {
  const parse = app.parseCookie
  let calls = 0
  app.parseCookie = (header: string) => {
    calls++
    return parse(header)
  }
  try {
    await fn()
  } finally {
    app.parseCookie = parse
  }
  return calls
}

/** Sends `cookie` twice, each answered `status`, and checks each request parsed it afresh. */
async function parsedEachTime(t: Test, app: FastifyInstance, cookie: string, status: number): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const calls = await parsesDuring(app, async () => {
      t.equal((await user(app, cookie)).statusCode, status)
    })
    t.equal(calls, 1, `request ${i + 1}: parsed`)
  }
}

t.test('a Cookie header whose session cookie opened before is not parsed again', async (t) => {
  const time = clock()
  const app = await appWith(t, time)
  const { cookie } = await seedSession(app, { sub: 'ada' })
  const withOthers = `theme=dark; ${cookie}; consent=%7B%22a%22%3A1%7D`
  t.equal(await parsesDuring(app, () => user(app, withOthers)), 1, 'the first request parses it')
  const again = await parsesDuring(app, async () => {
    const answer = await user(app, withOthers)
    t.equal(answer.statusCode, 200)
    t.equal(answer.json().sub, 'ada', 'and the remembered reading names the same session')
  })
  t.equal(again, 0, 'the same header again is not parsed')
  t.equal(
    await parsesDuring(app, () => user(app, `${cookie}; theme=light`)),
    1,
    'another header with the same cookie is read afresh',
  )
})

t.test('a Cookie header that opened nothing is not remembered', async (t) => {
  const time = clock()
  const app = await appWith(t, time)
  const name = app.gatehouse.config.session.cookieName
  const forged = `${name}=${'A'.repeat(120)}`
  await parsedEachTime(t, app, forged, 401)
  t.equal(app.sealedCookies.opened.headers, 0, 'nothing kept for it')
})

t.test('a long Cookie header is read each time, not kept', async (t) => {
  const time = clock()
  const app = await appWith(t, time)
  const { OPENED_HEADER_MAX_LENGTH } = await import('../../src/session/opened-cookies.js')
  const { cookie } = await seedSession(app)
  const long = `${cookie}; pad=${'x'.repeat(OPENED_HEADER_MAX_LENGTH)}`
  await parsedEachTime(t, app, long, 200)
  t.equal(app.sealedCookies.opened.headers, 0, 'a header over the length bound is not kept')
})

t.test('remembered Cookie headers stay at the bound, least recently used out', async (t) => {
  const opened = new OpenedCookies(3)
  for (let i = 0; i < 10; i++) opened.remember(`gatehouse=v; n=${i}`, 'v')
  t.equal(opened.headers, 3, 'as many headers as opened cookies, at most')
  t.equal(opened.sealedIn('gatehouse=v; n=9'), 'v', 'the newest is kept')
  t.equal(opened.sealedIn('gatehouse=v; n=0'), undefined, 'the oldest went first')
  opened.clear()
  t.equal(opened.headers, 0, 'and clearing the cache forgets them too')
})

t.test("a connection's repeated Cookie header is matched by equality, and only its own", async (t) => {
  const opened = new OpenedCookies(1)
  const browser = {}
  const other = {}
  const header = 'gatehouse=v; theme=dark'
  opened.remember(header, 'v', browser)
  // One header map entry: another header's reading pushes this one out.
  opened.remember('gatehouse=w', 'w', other)
  t.equal(opened.sealedIn(header), undefined, 'the header map has let it go')
  // An equal string, not the same one: each request's header is a new string.
  const again = ['gatehouse=v', 'theme=dark'].join('; ')
  t.equal(opened.sealedIn(again, browser), 'v', 'its connection still reads it')
  t.equal(
    opened.sealedIn(header, other),
    undefined,
    'another connection, whose last header differs, does not',
  )
  t.equal(opened.sealedIn('gatehouse=v; theme=light', browser), undefined, 'nor does another header on it')
  t.equal(opened.sealedIn('gatehouse=w', browser), 'w', 'a header the map holds is read there')
  t.equal(opened.sealedIn(header, browser), undefined, 'a connection keeps one reading, the last')
  const long = `${header}; pad=${'x'.repeat(1024)}`
  opened.remember(long, 'v', browser)
  t.equal(opened.sealedIn(long, browser), undefined, 'a long header is not kept on the connection either')
})

t.test(
  'on a keep-alive connection the same header is not looked up again; a new connection looks it up',
  async (t) => {
    const time = clock()
    const app = await appWith(t, time)
    const { cookie } = await seedSession(app, { sub: 'ada' })
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    const call = async (client: Client) => {
      const answer = await client.request({
        path: '/auth/user',
        method: 'GET',
        headers: { cookie, 'x-csrf': '1' },
      })
      const body = (await answer.body.json()) as { sub?: string }
      t.equal(answer.statusCode, 200)
      t.equal(body.sub, 'ada')
    }
    // One undici Client is one connection, kept alive between requests.
    const browser = new Client(url)
    t.teardown(() => browser.close())
    t.equal(await parsesDuring(app, () => call(browser)), 1, 'the first request reads the header')
    // Forget every header and opening the process keeps: only the connection remembers.
    app.sealedCookies.opened.clear()
    t.equal(await parsesDuring(app, () => call(browser)), 0, 'the same connection matches it by equality')
    app.sealedCookies.opened.clear()
    const another = new Client(url)
    t.teardown(() => another.close())
    t.equal(await parsesDuring(app, () => call(another)), 1, 'another connection reads it afresh')
  },
)

t.test('a remembered header opens no session once that session is logged out', async (t) => {
  const time = clock()
  const app = await appWith(t, time)
  const { session, cookie } = await seedSession(app)
  t.equal((await user(app, cookie)).statusCode, 200)
  t.equal((await user(app, cookie)).statusCode, 200)
  await app.gatehouse.sessions.store.delete(session.id)
  t.equal((await user(app, cookie)).statusCode, 401, 'the store decides, not the memo')
})
