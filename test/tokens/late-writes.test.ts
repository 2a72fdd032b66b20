import t from 'tap'
import type { LateAnswer } from '../../src/oidc/late-answer.js'
import { MemorySessionStore } from '../../src/session/memory-store.js'
import { awaitLate, type LateWriteDeps, lateWriteRefusal, storeLater } from '../../src/tokens/late-writes.js'
import type { RefreshOutcome } from '../../src/tokens/refresh-outcome.js'
import { RotatedWrites } from '../../src/tokens/rotated-writes.js'
import { UnavailableLimit } from '../../src/tokens/unavailable-limit.js'
import type { TokenAudience, TokenSet } from '../../src/types.js'
import { session } from '../session/fixtures.js'

const NOW = 1_700_000_000_000

/** A memory store holding one session, and what storing tokens no request waits on needs around it. */
async function setUp() {
  const store = new MemorySessionStore({ idleTimeoutMs: 60_000, clock: () => NOW })
  const record = session('s1', NOW)
  await store.create(record)
  const told: RefreshOutcome[] = []
  const deps: LateWriteDeps = {
    lateWrites: new Map(),
    writes: new RotatedWrites({ store, lockTtl: 1_000, now: () => NOW }),
    unavailable: new UnavailableLimit(300_000, () => NOW),
    observer: { refreshed: (outcome) => told.push(outcome) },
    now: () => NOW,
  }
  const stored = async () => (await store.get(record, NOW, { fresh: true, touch: false }))!
  return { store, record, deps, told, stored }
}

/** A late answer the test gives when it chooses. */
function answerLater() {
  let give!: (answer: LateAnswer<TokenSet>) => void
  const answer = new Promise<LateAnswer<TokenSet>>((resolve) => {
    give = resolve
  })
  return { answer, give }
}

t.test(
  'a refresh while its last answer is awaited is a 503 that says so; one while the store refuses its tokens, too',
  async (t) => {
    const stored = Promise.resolve()
    t.match(lateWriteRefusal({ stored, awaiting: 'answer' }), {
      code: 'GATEHOUSE_ERR_TOKEN_REFRESH_UNAVAILABLE',
      message: /answer is still awaited/,
    })
    t.match(lateWriteRefusal({ stored, awaiting: 'store' }), {
      code: 'GATEHOUSE_ERR_STORE_UNAVAILABLE',
      message: /store refused this session's new tokens/,
    })
  },
)

t.test('a late answer is stored into the session when it comes, and the scope is free after', async (t) => {
  const { record, deps, told, stored } = await setUp()
  deps.unavailable.failed(record.id, undefined)
  const late = answerLater()
  awaitLate(deps, 's1', record, undefined, late.answer, NOW)
  const entry = deps.lateWrites.get('s1')
  t.equal(entry?.awaiting, 'answer', 'the scope is held while the answer is awaited')
  late.give({ tokens: { accessToken: 'A2', accessTokenExpiresAt: NOW + 60_000, refreshToken: 'R2' } })
  await entry!.stored
  const after = await stored()
  t.equal(after.tokens.refreshToken, 'R2', 'the rotated refresh token is the live one')
  t.equal(after.tokens.accessToken, 'A2')
  t.equal(after.version, record.version + 1)
  t.same(told, ['late_success'])
  t.notOk(deps.lateWrites.has('s1'))
  t.notOk(deps.unavailable.failed(record.id, undefined, 0), 'the failure count started again')
})

t.test("a late answer for a route's audience keeps the login token and the other audiences", async (t) => {
  const { record, deps, stored } = await setUp()
  const orders: TokenAudience = {
    key: 'https://orders ',
    resource: 'https://orders',
    scopes: [],
    label: 'orders',
    dpop: false,
  }
  const late = answerLater()
  awaitLate(deps, 's1', record, orders, late.answer, NOW)
  late.give({ tokens: { accessToken: 'O1', accessTokenExpiresAt: NOW + 60_000, refreshToken: 'R2' } })
  await deps.lateWrites.get('s1')!.stored
  const after = await stored()
  t.equal(after.tokens.accessToken, 'A1', "the login's own token stays")
  t.equal(after.tokens.refreshToken, 'R2')
  t.equal(after.tokens.audiences?.[orders.key]?.accessToken, 'O1')
})

t.test('a late refusal keeps only the rotated refresh token it carried', async (t) => {
  const { record, deps, told, stored } = await setUp()
  const late = answerLater()
  awaitLate(deps, 's1', record, undefined, late.answer, NOW)
  late.give({ rotated: { refreshToken: 'R2' } })
  await deps.lateWrites.get('s1')!.stored
  const after = await stored()
  t.equal(after.tokens.refreshToken, 'R2')
  t.equal(after.tokens.accessToken, 'A1', 'nothing else changed')
  t.same(told, ['late_lost'])
})

t.test('a late answer does not overwrite a newer write: the compare-and-set keeps it', async (t) => {
  const { store, record, deps, told, stored } = await setUp()
  const late = answerLater()
  awaitLate(deps, 's1', record, undefined, late.answer, NOW)
  await store.updateTokens(record, record.version, { ...record.tokens, refreshToken: 'R9' })
  late.give({ tokens: { accessToken: 'A2', accessTokenExpiresAt: NOW + 60_000, refreshToken: 'R2' } })
  await deps.lateWrites.get('s1')!.stored
  t.equal((await stored()).tokens.refreshToken, 'R9')
  t.same(told, ['late_lost'])
})

t.test('tokens the store refused are offered to it again, and the scope is held until then', async (t) => {
  const { record, deps, stored } = await setUp()
  storeLater(deps, 's1', record, { ...record.tokens, refreshToken: 'R2' })
  const entry = deps.lateWrites.get('s1')
  t.equal(entry?.awaiting, 'store')
  await entry!.stored
  t.equal((await stored()).tokens.refreshToken, 'R2')
  t.notOk(deps.lateWrites.has('s1'))
})

t.test("an earlier write's end does not free the scope a later one holds", async (t) => {
  const { record, deps } = await setUp()
  const earlier = answerLater()
  awaitLate(deps, 's1', record, undefined, earlier.answer, NOW)
  const first = deps.lateWrites.get('s1')!
  const later = answerLater()
  awaitLate(deps, 's1', record, undefined, later.answer, NOW)
  const second = deps.lateWrites.get('s1')!
  earlier.give({ rotated: undefined })
  await first.stored
  t.equal(deps.lateWrites.get('s1'), second, 'still held by the write that took it last')
  later.give({ rotated: undefined })
  await second.stored
  t.notOk(deps.lateWrites.has('s1'), 'and freed when that one ends')
})
