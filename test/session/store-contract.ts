import type { Test } from 'tap'
import type { SessionData, SessionStore } from '../../src/session/types.js'
import { keyFor, ref, session } from './fixtures.js'

/** What every SessionStore must do, run against the memory and the Redis store alike. */
export function sessionStoreContract(
  t: Test,
  name: string,
  open: (
    idleTimeoutMs: number,
    now: () => number,
  ) => Promise<{ store: SessionStore; close(): Promise<unknown> }>,
): void {
  // Each case reads the time when it starts, and the expiries are seconds
  // long: Redis counts a key's TTL in real time from the caller's clock, and
  // one-second expiries from a time taken when the contract was registered
  // ran out on a loaded machine (a case took 2.4 s) before the cases read.
  let base = Date.now()
  t.beforeEach(() => {
    base = Date.now()
  })
  // Expiries of seconds, so the contract's expiry cases need only a few clock steps.
  const make = (id: string, now: number, extra: Partial<SessionData> = {}): SessionData =>
    session(id, now, {
      sid: 'sid-1',
      tokens: { accessToken: `A-${id}`, accessTokenExpiresAt: now + 60_000, refreshToken: `R-${id}` },
      absoluteExpiresAt: now + 100_000,
      idleExpiresAt: now + 10_000,
      logoutHandle: `h-${id}`,
      ...extra,
    })

  t.test(`${name}: create, get, compare-and-set, delete`, async (t) => {
    const { store, close } = await open(10_000, () => base)
    t.teardown(close)
    await store.create(make('a', base))
    const got = await store.get(ref('a'), base)
    t.same(got, make('a', base))
    const next = { accessToken: 'A2', accessTokenExpiresAt: base + 120_000, refreshToken: 'R2' }
    t.equal(await store.updateTokens(ref('a'), 0, next), 'updated')
    t.equal(await store.updateTokens(ref('a'), 0, next), 'stale', 'the same version cannot write twice')
    t.equal(await store.updateTokens(ref('zz'), 0, next), 'missing')
    const updated = (await store.get(ref('a'), base))!
    t.equal(updated.version, 1)
    t.same(updated.tokens, next)
    await store.delete('a')
    t.equal(await store.get(ref('a'), base), undefined)
    t.same(await store.idsBySub('alice'), [])
    t.same(await store.idsBySid('sid-1'), [])
  })

  t.test(
    `${name}: each provider has its own sub and sid indexes; a session keeps its provider`,
    async (t) => {
      const { store, close } = await open(10_000, () => base)
      t.teardown(close)
      // The same sub and sid at two providers: two users, two IdP sessions.
      await store.create(make('d', base))
      await store.create(make('c', base, { idp: 'corp' }))
      await store.create(make('p', base, { idp: 'partner' }))
      t.equal((await store.get(ref('p'), base))?.idp, 'partner', 'the provider comes back with the session')
      t.same(await store.idsBySid('sid-1', 'partner'), ['p'])
      t.same(await store.idsBySub('alice', 'corp'), ['c'])
      t.same(await store.idsBySid('sid-1'), ['d'], 'without a provider: the default one, as ever')
      t.same(await store.idsBySid('sid-1', 'default'), ['d'])
      t.same(await store.idsBySid('sid-1', 'nobody'), [])
      await store.delete('p')
      t.same(await store.idsBySid('sid-1', 'partner'), [], 'a delete leaves its own index')
      t.same(await store.idsBySid('sid-1', 'corp'), ['c'], "and no other provider's")
    },
  )

  t.test(`${name}: a session keeps the resources its login asked for, sealed with the rest`, async (t) => {
    const { store, close } = await open(10_000, () => base)
    t.teardown(close)
    const resources = ['https://orders.example/', 'https://reports.example/']
    await store.create(make('r', base, { resources }))
    await store.create(make('o', base))
    t.same((await store.get(ref('r'), base))?.resources, resources)
    t.equal((await store.get(ref('o'), base))?.resources, undefined, 'one created without them has none')
    t.equal(await store.updateTokens(ref('r'), 0, make('r', base).tokens), 'updated')
    t.same((await store.get(ref('r'), base))?.resources, resources, 'a token update keeps them')
  })

  t.test(`${name}: a session keeps the issuer and client id of its tokens`, async (t) => {
    const { store, close } = await open(10_000, () => base)
    t.teardown(close)
    const registration = { issuer: 'https://idp.example/', clientId: 'gatehouse' }
    await store.create(make('r', base, { idp: 'corp', registration }))
    await store.create(make('o', base, { idp: 'corp' }))
    t.same((await store.get(ref('r'), base))?.registration, registration)
    t.equal(
      (await store.get(ref('o'), base))?.registration,
      undefined,
      'one made before sessions recorded it has none',
    )
  })

  t.test(`${name}: a lookup by sub or sid may keep only the sessions of one registration`, async (t) => {
    const { store, close } = await open(10_000, () => base)
    t.teardown(close)
    // Provider `corp` before and after a reload gave its name another issuer.
    const before = { issuer: 'https://a.idp.example/', clientId: 'gatehouse' }
    const after = { issuer: 'https://b.idp.example/', clientId: 'gatehouse' }
    await store.create(make('before', base, { idp: 'corp', registration: before }))
    await store.create(make('after', base, { idp: 'corp', registration: after }))
    await store.create(make('unrecorded', base, { idp: 'corp' }))
    const of = (wanted: typeof before) => (registration: typeof before | undefined) =>
      registration?.issuer === wanted.issuer
    t.same(await store.idsBySub('alice', 'corp', of(after)), ['after'])
    t.same(await store.idsBySid('sid-1', 'corp', of(before)), ['before'])
    t.same(
      (await store.idsBySid('sid-1', 'corp', (registration) => registration === undefined)).sort(),
      ['unrecorded'],
      'one made before sessions recorded it is asked about as such',
    )
    t.same((await store.idsBySub('alice', 'corp')).sort(), ['after', 'before', 'unrecorded'], 'without: all')
  })

  t.test(`${name}: sliding idle expiry, absolute expiry, and the indexes follow`, async (t) => {
    let now = base
    const { store, close } = await open(10_000, () => now)
    t.teardown(close)
    await store.create(make('idle', now, { sub: 'bob', sid: 's-idle' }))
    await store.create(make('abs', now, { sub: 'bob', sid: 's-abs', absoluteExpiresAt: now + 15_000 }))
    t.same((await store.idsBySub('bob')).sort(), ['abs', 'idle'])

    now += 9_000
    t.ok(await store.get(ref('abs'), now), 'touched inside the idle window: slides')
    now += 5_000
    t.equal(
      await store.get(ref('idle'), now),
      undefined,
      'idle expiry: untouched for longer than idleTimeout',
    )
    t.ok(await store.get(ref('abs'), now), 'still alive: its idle expiry slid')
    t.same(await store.idsBySub('bob'), ['abs'])
    t.same(await store.idsBySid('s-idle'), [], 'the sid index forgets expired sessions')

    now = base + 16_000
    t.equal(
      await store.get(ref('abs'), now),
      undefined,
      'absolute expiry holds however active the session is',
    )
    t.same(await store.idsBySub('bob'), [])
    t.same(await store.idsBySid('s-abs'), [])
  })

  t.test(`${name}: a read with touch: false never slides the idle expiry`, async (t) => {
    let now = base
    // A minute, so Redis's own TTL (set from the caller's clock, counted in
    // real time) cannot expire the key on a slow machine before the reads.
    const { store, close } = await open(60_000, () => now)
    t.teardown(close)
    await store.create(
      make('watched', now, { idleExpiresAt: now + 60_000, absoluteExpiresAt: now + 600_000 }),
    )
    // Read at every step past the touch interval, as the WebSocket session
    // watch does while a socket is silent: the session still ends on time.
    for (const step of [20_000, 20_000, 19_000]) {
      now += step
      const seen = await store.get(ref('watched'), now, { touch: false })
      t.equal(seen?.idleExpiresAt, base + 60_000, `at +${now - base} ms: alive, its idle expiry where it was`)
    }
    now = base + 60_000
    t.equal(await store.get(ref('watched'), now, { touch: false }), undefined, 'gone at its idle expiry')
    t.equal(await store.get(ref('watched'), now), undefined, 'for every reader')
  })

  t.test(`${name}: a key that is not the session's opens nothing, and changes nothing`, async (t) => {
    const { store, close } = await open(10_000, () => base)
    t.teardown(close)
    const mine = make('mine', base)
    await store.create(mine)
    const unreadable = { code: 'GATEHOUSE_ERR_SESSION_UNREADABLE', statusCode: 401 }
    await t.rejects(store.get({ id: 'mine', key: keyFor('theirs') }, base), unreadable)
    // Twice: a local copy, where the store has one, must refuse it as well.
    await t.rejects(store.get({ id: 'mine', key: keyFor('theirs') }, base), unreadable)
    t.same(await store.get(ref('mine'), base), mine, 'the right key still opens it')
    await t.rejects(store.get({ id: 'mine', key: keyFor('theirs') }, base), unreadable, 'also once read')
  })

  t.test(`${name}: a user's live sessions, with when each began, for the per-user bound`, async (t) => {
    let now = base
    const { store, close } = await open(10_000, () => now)
    t.teardown(close)
    const corp = { issuer: 'https://corp.idp.example/', clientId: 'gatehouse' }
    await store.create(make('older', base, { sub: 'uma', createdAt: base - 2_000 }))
    await store.create(make('newer', base, { sub: 'uma', createdAt: base - 1_000, sid: 'sid-2' }))
    // Its idle expiry is also the record's TTL in Redis, in real time: 4 s
    // leaves room for the writes and the listing below on a Cluster (1 s
    // did not, once, on a quiet CI machine), and the store's own clock then
    // moves past it.
    await store.create(make('idling', base, { sub: 'uma', idleExpiresAt: base + 4_000 }))
    await store.create(make('at-corp', base, { sub: 'uma', idp: 'corp', registration: corp }))
    await store.create(make('other-user', base, { sub: 'ursula' }))
    const listed = async (idp?: string, issuedBy?: Parameters<SessionStore['sessionsOfUser']>[2]) =>
      (await store.sessionsOfUser('uma', idp, issuedBy))
        .map(({ id, createdAt }) => ({ id, createdAt }))
        .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
    t.same(await listed(), [
      { id: 'older', createdAt: base - 2_000 },
      { id: 'newer', createdAt: base - 1_000 },
      { id: 'idling', createdAt: base },
    ])
    t.same(await listed('corp'), [{ id: 'at-corp', createdAt: base }], 'each provider its own')
    t.same(await listed('corp', (registration) => registration?.issuer === 'https://elsewhere.example/'), [])

    now = base + 4_500
    t.same(
      (await listed()).map(({ id }) => id),
      ['older', 'newer'],
      'one past its idle expiry is not listed',
    )
    const [first] = await store.sessionsOfUser('uma', undefined, () => true)
    if (store.kind === 'memory')
      t.match(
        first?.grant,
        { idp: 'default', sub: 'uma', refreshToken: /^R-/ },
        'memory: the grant, unsealed',
      )
    else t.equal(first?.grant, undefined, 'a shared store: the grant stays sealed')

    t.equal(await store.delete('older'), true, 'a delete says it removed the record')
    t.equal(await store.delete('older'), false, 'and a second one that there was none')
    t.same(
      (await listed()).map(({ id }) => id),
      ['newer'],
    )
  })

  t.test(
    `${name}: a user's sessions are listed with their current refresh token's expiry, where the IdP said`,
    async (t) => {
      const { store, close } = await open(10_000, () => base)
      t.teardown(close)
      const tokens = (id: string, refreshTokenExpiresAt?: number) => ({
        accessToken: `A-${id}`,
        accessTokenExpiresAt: base + 60_000,
        refreshToken: `R-${id}`,
        ...(refreshTokenExpiresAt === undefined ? {} : { refreshTokenExpiresAt }),
      })
      await store.create(make('said', base, { sub: 'una', tokens: tokens('said', base + 5_000) }))
      await store.create(make('unsaid', base, { sub: 'una' }))
      const expiries = async () =>
        Object.fromEntries(
          (await store.sessionsOfUser('una')).map((s) => [s.id, s.refreshTokenExpiresAt ?? null]),
        )
      t.same(await expiries(), { said: base + 5_000, unsaid: null }, 'as each login left it')
      t.equal(await store.updateTokens(ref('said'), 0, tokens('said-2', base + 9_000)), 'updated')
      t.equal(await store.updateTokens(ref('unsaid'), 0, tokens('unsaid-2', base + 7_000)), 'updated')
      t.same(await expiries(), { said: base + 9_000, unsaid: base + 7_000 }, 'the rotated tokens’ own')
      t.equal(await store.updateTokens(ref('said'), 1, tokens('said-3')), 'updated')
      t.same(await expiries(), { said: null, unsaid: base + 7_000 }, 'and none once the IdP says none')
    },
  )

  t.test(
    `${name}: take removes a session as delete does and hands back what it holds in the clear`,
    async (t) => {
      const { store, close } = await open(10_000, () => base)
      t.teardown(close)
      await store.create(make('taken', base, { sub: 'uta' }))
      await store.create(make('kept', base, { sub: 'uta' }))
      const taken = await store.take('taken')
      if (store.kind === 'memory')
        t.same(
          taken,
          {
            grant: {
              idp: 'default',
              registration: undefined,
              sub: 'uta',
              sid: 'sid-1',
              refreshToken: 'R-taken',
            },
          },
          'memory: its grant, unsealed',
        )
      else t.same(taken, {}, 'a shared store: removed, its grant sealed')
      t.equal(await store.take('taken'), undefined, 'a second take finds none')
      t.equal(await store.get(ref('taken'), base), undefined, 'its record is gone')
      t.same(await store.idsBySub('uta'), ['kept'], 'and its index entry')
    },
  )

  t.test(`${name}: a session a sign-in replaced is noted as such, per id, for a while`, async (t) => {
    let now = base
    const { store, close } = await open(10_000, () => now)
    t.teardown(close)
    await store.create(make('old', now))
    t.equal(await store.replaced('old'), false, 'a session is not replaced until a sign-in says so')
    await store.noteReplaced('old', 60_000)
    await store.delete('old')
    t.equal(await store.replaced('old'), true, 'noted, its record gone')
    t.equal(await store.replaced('other'), false, 'no other id')
    await store.noteReplaced('brief', 20)
    // The memory store goes by its clock, Redis by the key's TTL in real
    // time: asked until it answers, each ask a round trip, for at most 5 s.
    now += 30
    const end = Date.now() + 5_000
    while ((await store.replaced('brief')) && Date.now() < end);
    t.equal(await store.replaced('brief'), false, 'forgotten once its time is up')
    t.equal(await store.replaced('old'), true, 'each note its own time')
  })

  t.test(
    `${name}: a logout of a user (sub only) is noted per client, keeping the latest of each time`,
    async (t) => {
      const { store, close } = await open(10_000, () => base)
      t.teardown(close)
      const corp = { issuer: 'https://corp.idp.example/', clientId: 'gatehouse' }
      const iat = Math.floor(base / 1000)
      t.equal(await store.subLoggedOutAt(corp, 'uma'), undefined, 'not noted yet')
      await store.noteSubLoggedOut(corp, 'uma', { at: base, iat }, 60_000)
      t.same(await store.subLoggedOutAt(corp, 'uma'), { at: base, iat }, 'when it came, and its iat')
      t.equal(await store.subLoggedOutAt(corp, 'ursula'), undefined, 'not another user')
      t.equal(
        await store.subLoggedOutAt({ ...corp, clientId: 'another' }, 'uma'),
        undefined,
        'nor the same sub at another client of the issuer',
      )
      // A logout owed since a store outage is noted when the store is back,
      // with the earlier times it came with: the later logout's stay.
      await store.noteSubLoggedOut(corp, 'uma', { at: base - 1_000, iat: iat - 5 }, 60_000)
      t.same(await store.subLoggedOutAt(corp, 'uma'), { at: base, iat }, 'an earlier logout noted late')
      await store.noteSubLoggedOut(corp, 'uma', { at: base + 500, iat: iat + 1 }, 60_000)
      t.same(await store.subLoggedOutAt(corp, 'uma'), { at: base + 500, iat: iat + 1 }, 'a later one')
      // Each time its own latest: two IdP nodes' clocks, or a delivery delayed.
      await store.noteSubLoggedOut(corp, 'uma', { at: base + 200, iat: iat + 3 }, 60_000)
      t.same(
        await store.subLoggedOutAt(corp, 'uma'),
        { at: base + 500, iat: iat + 3 },
        'each time its latest',
      )
    },
  )
}
