import t from 'tap'
import { StoreUnavailableError } from '../../src/errors.js'
import { closeRedisClient, createRedisClient, whenReady } from '../../src/redis/connection.js'
import { REDIS_KEY_LAYOUT } from '../../src/redis/keys.js'
import { RedisSessionStore } from '../../src/session/redis-store.js'
import { startRedis } from '../helpers/redis.js'
import { pollUntil } from '../helpers/within.js'
import { indexHash, indexName, openTokens, ref, SECRETS, session } from './fixtures.js'
import { sessionStoreContract } from './store-contract.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

async function open(prefix: string, idleTimeoutMs: number, now = Date.now) {
  const client = createRedisClient(redis.url)
  await whenReady(client)
  const store = new RedisSessionStore({ client, keyPrefix: prefix, secrets: SECRETS, idleTimeoutMs, now })
  return { client, store, close: () => closeRedisClient(client) }
}

let n = 0
sessionStoreContract(t, 'redis', (idleTimeoutMs, now) => open(`${redis.prefix}${++n}:`, idleTimeoutMs, now))

t.test('a replaced session’s marker: its own key, `1`, with the TTL it was noted for', async (t) => {
  const prefix = `${redis.prefix}replaced:`
  const { client, store, close } = await open(prefix, 60_000)
  t.teardown(close)
  await store.noteReplaced('k1', 300_000)
  t.same(
    await client.keys(`${prefix}*`),
    [`${prefix}replaced:{k1}`],
    'outside the session keys the cache tracks',
  )
  t.equal(await client.get(`${prefix}replaced:{k1}`), '1', 'nothing of the session')
  const ttl = await client.pttl(`${prefix}replaced:{k1}`)
  t.ok(ttl > 0 && ttl <= 300_000, `PX 5 minutes (${ttl} ms left)`)
})

t.test(
  'key layout: a hash with a TTL at min(idle, absolute), indexes scored by absolute expiry',
  async (t) => {
    const prefix = `${redis.prefix}layout:`
    const { client, store, close } = await open(prefix, 60_000)
    t.teardown(close)
    const now = Date.now()
    await store.create(session('k1', now, { sid: 'idp-sid' }))
    const sub = `${prefix}${indexName('sub', 'alice')}`
    const sid = `${prefix}${indexName('sid', 'idp-sid')}`
    t.same((await client.keys(`${prefix}*`)).sort(), [`${prefix}s:{k1}`, sid, sub].sort())
    t.same(
      (await client.hkeys(`${prefix}s:{k1}`)).sort(),
      Object.keys(REDIS_KEY_LAYOUT.session.fields).sort(),
    )
    t.equal(Number(await client.pexpiretime(`${prefix}s:{k1}`)), now + 60_000, 'PEXPIREAT the idle expiry')
    const clear = await client.hmget(`${prefix}s:{k1}`, 'v', 'idle', 'abs', 'ix', 'c')
    t.same(
      clear,
      [
        '0',
        String(now + 60_000),
        String(now + 3_600_000),
        JSON.stringify({ sub: indexHash('sub', 'alice'), sid: indexHash('sid', 'idp-sid') }),
        String(now),
      ],
      'in the clear: version, expiry, the index hashes and the creation time',
    )
    const login = (await client.hget(`${prefix}s:{k1}`, 'login'))!
    t.match(login, /^a1\.s1\./, 'the login fields are sealed with the session key')
    t.notMatch(login, /alice|idp-sid|Alice/)
    t.equal(Number(await client.zscore(sub, 'k1')), now + 3_600_000)
    t.equal(Number(await client.pexpiretime(sub)), now + 3_600_000)
    t.equal(Number(await client.pexpiretime(sid)), now + 3_600_000)

    await store.create(session('k9', now, { absoluteExpiresAt: now + 30_000 }))
    t.equal(
      Number(await client.pexpiretime(`${prefix}s:{k9}`)),
      now + 30_000,
      'capped at the absolute expiry',
    )
    t.equal(
      Number(await client.pexpiretime(sub)),
      now + 3_600_000,
      'an index lives as long as its longest-lived member',
    )
    t.same(await store.get(ref('k9'), now), session('k9', now, { absoluteExpiresAt: now + 30_000 }))
  },
)

t.test('a touch never rewrites tokens: a stale reader cannot put back rotated tokens', async (t) => {
  const prefix = `${redis.prefix}touch:`
  const { client, store, close } = await open(prefix, 60_000)
  t.teardown(close)
  let now = Date.now()
  await store.create(session('k2', now))
  const before = (await store.get(ref('k2'), now))!
  const rotated = { accessToken: 'A2', accessTokenExpiresAt: now + 60_000, refreshToken: 'R2' }
  t.equal(await store.updateTokens(ref('k2'), before.version, rotated), 'updated')
  // A request that read `before` slides the idle expiry late: the tokens stay.
  now += 30_000
  const touched = (await store.get(ref('k2'), now))!
  t.equal(touched.tokens.refreshToken, 'R2')
  t.equal(touched.version, 1)
  t.equal(touched.idleExpiresAt, now + 60_000, 'the idle expiry slid')
  t.equal(Number(await client.pexpiretime(`${prefix}s:{k2}`)), now + 60_000, 'and the TTL with it')
  t.equal(
    await store.updateTokens(ref('k2'), before.version, before.tokens),
    'stale',
    'the old snapshot cannot write',
  )
  t.equal(openTokens('k2', await client.hget(`${prefix}s:{k2}`, 'tokens')).refreshToken, 'R2')
  t.equal(await client.hget(`${prefix}s:{k2}`, 'v'), '1')
})

t.test('the touch is throttled: reads within touchEveryMs write nothing', async (t) => {
  const prefix = `${redis.prefix}throttle:`
  const client = createRedisClient(redis.url)
  await whenReady(client)
  t.teardown(() => closeRedisClient(client))
  const store = new RedisSessionStore({
    client,
    keyPrefix: prefix,
    secrets: SECRETS,
    idleTimeoutMs: 60_000,
    touchEveryMs: 5_000,
  })
  const now = Date.now()
  await store.create(session('k4', now))
  t.equal((await store.get(ref('k4'), now + 4_999))!.idleExpiresAt, now + 60_000, 'not yet')
  t.equal(await client.hget(`${prefix}s:{k4}`, 'idle'), String(now + 60_000))
  t.equal((await store.get(ref('k4'), now + 5_000))!.idleExpiresAt, now + 65_000, 'slid once enough elapsed')
  t.equal((await store.get(ref('k4'), now + 6_000))!.idleExpiresAt, now + 65_000, 'and not again right after')
  t.equal(
    (await store.get(ref('k4'), now + 3_599_000))?.idleExpiresAt,
    undefined,
    'idle-expired by the caller clock',
  )
})

t.test('the hot read is one plain HMGET: no script runs until the idle expiry is due to slide', async (t) => {
  const prefix = `${redis.prefix}hot:`
  const { client, store, close } = await open(prefix, 60_000)
  t.teardown(close)
  const monitor = await client.monitor()
  t.teardown(() => monitor.disconnect())
  const seen: string[][] = []
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args.some((arg) => arg.startsWith(prefix))) seen.push(args)
  })
  // MONITOR replays commands in order, so once the marker shows up every
  // command sent before it has been seen too.
  const settled = async (marker: string) => {
    await client.get(`${prefix}${marker}`)
    await pollUntil(async () => seen.some((args) => args.includes(`${prefix}${marker}`)))
    return seen.splice(0).filter((args) => !args.includes(`${prefix}${marker}`))
  }
  const now = Date.now()
  await store.create(session('k7', now))
  await settled('created')

  t.ok(await store.get(ref('k7'), now + 1_000))
  t.same(
    (await settled('read')).map((args) => args[0]!.toLowerCase()),
    ['hmget'],
    'a read inside the throttle sends only HMGET',
  )
  t.equal((await store.get(ref('k7'), now + 6_000))!.idleExpiresAt, now + 66_000)
  const touch = (await settled('touched')).map((args) => args[0]!.toLowerCase())
  t.equal(touch[0], 'hmget')
  t.match(touch[1], /^eval/, 'then the touch script slides the idle expiry')
})

t.test('never slides past the absolute expiry', async (t) => {
  const prefix = `${redis.prefix}cap:`
  const { client, store, close } = await open(prefix, 60_000)
  t.teardown(close)
  const now = Date.now()
  await store.create(session('k5', now, { absoluteExpiresAt: now + 80_000 }))
  const got = (await store.get(ref('k5'), now + 50_000))!
  t.equal(got.idleExpiresAt, now + 80_000)
  t.equal(Number(await client.pexpiretime(`${prefix}s:{k5}`)), now + 80_000)
  t.equal(await store.get(ref('k5'), now + 80_000), undefined)
})

t.test('concurrent compare-and-set: exactly one writer of a version wins', async (t) => {
  const prefix = `${redis.prefix}cas:`
  const { store, close } = await open(prefix, 60_000)
  t.teardown(close)
  const now = Date.now()
  await store.create(session('k6', now))
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      store.updateTokens(ref('k6'), 0, {
        accessToken: `A${i}`,
        accessTokenExpiresAt: now + 1,
        refreshToken: `R${i}`,
      }),
    ),
  )
  t.equal(results.filter((r) => r === 'updated').length, 1)
  t.equal(results.filter((r) => r === 'stale').length, 199)
  const winner = results.indexOf('updated')
  const stored = (await store.get(ref('k6'), now))!
  t.equal(stored.version, 1)
  t.equal(stored.tokens.refreshToken, `R${winner}`, 'the stored tokens are the winner’s')
})

t.test('after real expiry the session keys and the indexes are clean', async (t) => {
  const prefix = `${redis.prefix}expiry:`
  // Real TTLs, so the listing below must come before they run out: 300 ms was once too short on
  // a loaded CI machine for two writes and a listing; 1.5 s still ends well inside the polls.
  const life = 1_500
  const { client, store, close } = await open(prefix, life)
  t.teardown(close)
  const now = Date.now()
  await store.create(session('idle1', now, { idleExpiresAt: now + life, sid: 'sx' }))
  await store.create(
    session('abs1', now, { idleExpiresAt: now + life, absoluteExpiresAt: now + life + 100, sub: 'bob' }),
  )
  t.same(await store.idsBySub('alice'), ['idle1'])

  // Redis drops the session keys by their TTL; nothing here sweeps them.
  await pollUntil(async () => (await client.exists(`${prefix}s:{idle1}`, `${prefix}s:{abs1}`)) === 0, 5_000)
  t.same(await store.idsBySub('alice'), [])
  t.same(await store.idsBySid('sx'), [])
  t.equal(
    await client.exists(`${prefix}${indexName('sub', 'alice')}`),
    0,
    'listing pruned the dead member, and the empty key went',
  )
  t.equal(await client.exists(`${prefix}${indexName('sid', 'sx')}`), 0)
  // An index nobody reads expires by itself at its last member's absolute expiry.
  await pollUntil(async () => (await client.exists(`${prefix}${indexName('sub', 'bob')}`)) === 0, 5_000)
  t.same(await client.keys(`${prefix}*`), [])
})

t.test('delete removes the session and its index entries, keeping other sessions', async (t) => {
  const prefix = `${redis.prefix}delete:`
  const { client, store, close } = await open(prefix, 60_000)
  t.teardown(close)
  const now = Date.now()
  await store.create(session('d1', now, { sid: 'shared' }))
  await store.create(session('d2', now, { sid: 'shared' }))
  t.same((await store.idsBySid('shared')).sort(), ['d1', 'd2'])
  await store.delete('d1')
  await store.delete('d1')
  await store.delete('never-existed')
  t.same(await store.idsBySub('alice'), ['d2'])
  t.same(await client.zrange(`${prefix}${indexName('sid', 'shared')}`, '0', '-1'), ['d2'])
})

t.test(
  'an outage answers fast with StoreUnavailableError; sessions survive; it reconnects alone',
  async (t) => {
    if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
    const prefix = `${redis.prefix}outage:`
    const { store, close } = await open(prefix, 60_000)
    t.teardown(close)
    const now = Date.now()
    await store.create(session('k3', now))
    const next = { accessToken: 'A2', accessTokenExpiresAt: now + 1 }

    await redis.kill()
    const started = Date.now()
    const failures = await Promise.allSettled([
      store.get(ref('k3'), now),
      store.ping(),
      store.create(session('k7', now)),
      store.updateTokens(ref('k3'), 0, next),
      store.delete('k3'),
      store.idsBySub('alice'),
    ])
    t.ok(Date.now() - started < 1_500, `down: fails within the command budget (${Date.now() - started} ms)`)
    for (const failure of failures) {
      t.equal(failure.status, 'rejected')
      if (failure.status === 'rejected') {
        t.type(failure.reason, StoreUnavailableError)
        t.match(failure.reason, { code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE', statusCode: 503 })
      }
    }

    await redis.restart()
    await pollUntil(() =>
      store.ping().then(
        () => true,
        () => false,
      ),
    )
    const back = await store.get(ref('k3'), now)
    t.equal(back?.sub, 'alice', 'the session written before the outage is still valid')
    t.equal(
      await store.updateTokens(ref('k3'), 0, next),
      'updated',
      'and writable (scripts reloaded after NOSCRIPT)',
    )

    redis.freeze()
    const frozen = Date.now()
    const hung = await store.get(ref('k3'), now).then(
      () => undefined,
      (err: Error) => err,
    )
    const took = Date.now() - frozen
    t.type(hung, StoreUnavailableError)
    // The command timeout (1 s) fired, not the socket timeout (2 s) behind
    // it: which one ended the call is in its cause, whatever the machine's
    // load added to the wait. The bound stays below the socket timeout; at
    // 1.5 s it was 0.5 s above the measured 1.0 s, and a loaded machine can
    // hold a timer that long.
    t.equal((hung?.cause as Error | undefined)?.message, 'Command timed out', 'the command timeout ended it')
    t.ok(took < 1_900, `hung: fails within the command timeout (${took} ms)`)
    redis.resume()
    await pollUntil(() =>
      store.ping().then(
        () => true,
        () => false,
      ),
    )
    t.equal((await store.get(ref('k3'), now))?.version, 1)
  },
)

t.test('indexes survive a secret rotation: found under every secret, written under the first', async (t) => {
  const prefix = `${redis.prefix}rotate:`
  const client = createRedisClient(redis.url)
  await whenReady(client)
  t.teardown(() => closeRedisClient(client))
  const NEW = 'a-rotated-in-session-secret-of-32-characters'
  const store = (secrets: readonly string[]) =>
    new RedisSessionStore({ client, keyPrefix: prefix, secrets, idleTimeoutMs: 60_000 })
  const now = Date.now()
  await store(SECRETS).create(session('r1', now, { sid: 'idp-1' }))
  const rotated = store([NEW, ...SECRETS])
  await rotated.create(session('r2', now, { sid: 'idp-1' }))
  t.same((await rotated.idsBySub('alice')).sort(), ['r1', 'r2'], 'by sub, under both secrets')
  t.same((await rotated.idsBySid('idp-1')).sort(), ['r1', 'r2'], 'by sid, under both secrets')
  t.same(await store(SECRETS).idsBySub('alice'), ['r1'], 'the old secret alone finds what it wrote')
  await rotated.delete('r1')
  await rotated.delete('r2')
  t.same(await client.keys(`${prefix}*`), [], 'each delete left the index it was written under')
})

t.test('a record written before records kept their creation time is the oldest of its user', async (t) => {
  const prefix = `${redis.prefix}no-c:`
  const { client, store, close } = await open(prefix, 60_000)
  t.teardown(close)
  const now = Date.now()
  await store.create(session('before', now + 5_000))
  await client.hdel(`${prefix}s:{before}`, 'c')
  await store.create(session('since', now))
  t.same(
    (await store.sessionsOfUser('alice')).sort((a, b) => a.createdAt - b.createdAt),
    [
      { id: 'before', createdAt: 0 },
      { id: 'since', createdAt: now },
    ],
  )
})

/**
 * `rx`, the refresh token's expiry in the clear, names the version of the
 * tokens it is of. An instance of a release before it rotates the tokens
 * (its UPDATE_TOKENS bumps `v`, leaves `rx`): the expiry of the token it
 * rotated away must not stand for the new one's, or a logout would take a
 * session that can still refresh for one that cannot, and revoke the grant
 * it shares. A record written before `rx` was has none: not known.
 */
t.test('a refresh expiry of tokens an older release rotated is not known', async (t) => {
  const prefix = `${redis.prefix}rx:`
  const { client, store, close } = await open(prefix, 60_000)
  t.teardown(close)
  const now = Date.now()
  const tokens = { accessToken: 'A', accessTokenExpiresAt: now + 60_000, refreshToken: 'R' }
  await store.create(session('rotated', now, { tokens: { ...tokens, refreshTokenExpiresAt: now + 5_000 } }))
  await store.create(session('before', now, { tokens: { ...tokens, refreshTokenExpiresAt: now + 5_000 } }))
  t.equal(await client.hget(`${prefix}s:{rotated}`, 'rx'), `0:${now + 5_000}`, 'of version 0')
  await client.hincrby(`${prefix}s:{rotated}`, 'v', 1)
  await client.hdel(`${prefix}s:{before}`, 'rx')
  t.same(
    (await store.sessionsOfUser('alice')).map((s) => s.refreshTokenExpiresAt),
    [undefined, undefined],
  )
})

/**
 * A logout of a user (sub only) is noted as `<at>.<iat>`: a release before
 * `iat` was noted reads the note as a number, which is then `at` and a
 * fraction, and compares its whole-ms sign-in start with it as before. A
 * note that release wrote (`<at>`) says nothing of the logout's `iat`,
 * so merged with a new one the note goes by `at` alone.
 */
t.test('a user’s logout note is read alike by the release before iat was noted', async (t) => {
  const prefix = `${redis.prefix}sub-note:`
  const { client, store, close } = await open(prefix, 60_000)
  t.teardown(close)
  const corp = { issuer: 'https://corp.idp.example/', clientId: 'gatehouse' }
  const at = Date.now()
  const iat = Math.floor(at / 1000) - 1
  await store.noteSubLoggedOut(corp, 'uma', { at, iat }, 60_000)
  const [key] = await client.keys(`${prefix}logged-out:sub:*`)
  const note = (await client.get(key!))!
  t.equal(note, `${at}.${iat}`)
  t.ok(at <= Number(note) && Number(note) < at + 1, 'a number read of it is `at`, and a fraction')
  t.ok(Number(await client.pttl(key!)) > 59_000, 'kept for its time')

  await client.set(key!, String(at + 1_000), 'PX', 60_000)
  t.same(await store.subLoggedOutAt(corp, 'uma'), { at: at + 1_000 }, 'the previous release’s note: no iat')
  await store.noteSubLoggedOut(corp, 'uma', { at: at + 2_000, iat: iat + 1 }, 60_000)
  t.same(await store.subLoggedOutAt(corp, 'uma'), { at: at + 2_000 }, 'merged with it: by `at` alone')
})
