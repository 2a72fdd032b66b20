/**
 * OwedRevocations on its own: refresh tokens whose revocation the IdP did
 * not answer, tried again on one timer until it does, each given up and
 * said to be once it cannot be made. The IdP's answers are the attempts'
 * own, as logout-revokes-once-the-idp-answers.test.ts gets them from the
 * real oidc-provider.
 */
import { pino } from 'pino'
import t from 'tap'
import { gatehouseError } from '../../src/errors.js'
import { type OwedRevocation, OwedRevocations, type RevokeAttempt } from '../../src/http/owed-revocations.js'
import { within } from '../helpers/within.js'

function logged() {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) })
  return { log, lines }
}

const owed = (refreshToken: string): OwedRevocation => ({
  idp: 'default',
  registration: undefined,
  refreshToken,
})

/** An attempt whose answers are `answers`, in order (the last repeated); `tried(n)` resolves at the nth call. */
function scripted(answers: ('revoked' | 'gone' | Error)[]) {
  const seen: string[] = []
  const waiters: { n: number; resolve: () => void }[] = []
  const attempt: RevokeAttempt = async (what) => {
    seen.push(what.refreshToken)
    for (const w of waiters.filter((w) => w.n <= seen.length)) w.resolve()
    const answer = answers[Math.min(seen.length, answers.length) - 1]!
    if (answer instanceof Error) throw answer
    return answer
  }
  const tried = (n: number) =>
    new Promise<void>((resolve) => (seen.length >= n ? resolve() : waiters.push({ n, resolve })))
  return { attempt, tried, seen }
}

// The retry timer is unref'd, as a closing gateway must not wait on it: this keeps the test's process up.
const alive = setInterval(() => {}, 60_000)
t.teardown(() => clearInterval(alive))

t.test('tried again while the IdP does not answer, then made; a refusal is given up', async (t) => {
  const { log, lines } = logged()
  const revocations = new OwedRevocations({ log })
  const down = gatehouseError('GATEHOUSE_ERR_IDP_UNAVAILABLE')
  const refused = gatehouseError('GATEHOUSE_ERR_IDP_CLIENT_REFUSED')
  const { attempt, tried, seen } = scripted([down, 'revoked', refused])
  revocations.serve(attempt)
  revocations.add(owed('one'), log)
  revocations.add(owed('two'), log)
  t.equal(lines.filter((l) => l.code === 'GATEHOUSE_REVOCATION_OWED').length, 2, 'each owed is said once')
  await tried(3)
  await new Promise<void>((resolve) => setImmediate(resolve))
  t.same(seen, ['one', 'one', 'two'], 'oldest first; a pass ends at the first the IdP does not answer')
  t.equal(revocations.size, 0)
  t.ok(lines.some((l) => l.msg === 'refresh token revoked once the identity provider answered again'))
  t.match(
    lines.find((l) => l.code === 'GATEHOUSE_REVOCATION_LOST'),
    { reason: 'GATEHOUSE_ERR_IDP_CLIENT_REFUSED', idp: 'default' },
    'a refusal that is no outage is given up',
  )
  t.notOk(
    JSON.stringify(lines).includes('"one"') || JSON.stringify(lines).includes('"two"'),
    'no token logged',
  )
})

t.test('a token whose provider is gone, one past its hour, one over the bound, and a close', async (t) => {
  let now = 0
  const { log, lines } = logged()
  const revocations = new OwedRevocations({ log, max: 2, clock: () => now })
  revocations.add(owed('late'), log)
  revocations.add(owed('gone'), log)
  revocations.add(owed('over'), log)
  t.match(
    lines.find((l) => l.code === 'GATEHOUSE_REVOCATION_LOST'),
    { reason: 'full' },
  )
  now = 3_600_000
  const { attempt, tried, seen } = scripted(['gone'])
  const unserve = revocations.serve(attempt)
  // 'late' is past its hour before its first try; 'gone' was owed at 0 too.
  await new Promise<void>((resolve) => {
    const check = () => (revocations.size === 0 ? resolve() : setTimeout(check, 50))
    check()
  })
  t.same(seen, [], 'nothing is tried past its hour')
  t.same(
    lines.filter((l) => l.code === 'GATEHOUSE_REVOCATION_LOST').map((l) => l.reason),
    ['full', 'expired', 'expired'],
  )
  now = 0
  revocations.add(owed('gone'), log)
  await tried(1)
  await new Promise<void>((resolve) => setImmediate(resolve))
  t.match(lines.at(-1), { code: 'GATEHOUSE_REVOCATION_LOST', reason: 'provider_gone' })
  unserve()
  revocations.add(owed('kept'), log)
  revocations.close()
  t.match(lines.at(-1), { code: 'GATEHOUSE_REVOCATION_LOST', reason: 'closed', owed: 1 })
  t.equal(revocations.size, 0)
})

/**
 * With several providers, a pass ended at the first token the IdP did not
 * answer: one IdP down (for up to the hour a revocation is owed) held
 * every other provider's owed revocations behind its own, each pass.
 */
t.test("one provider's IdP down does not hold another's owed revocations", async (t) => {
  const { log } = logged()
  const revocations = new OwedRevocations({ log })
  const seen: string[] = []
  let answered!: () => void
  const done = new Promise<void>((resolve) => {
    answered = resolve
  })
  revocations.serve(async (what) => {
    seen.push(what.refreshToken)
    if (what.idp === 'partner') throw gatehouseError('GATEHOUSE_ERR_IDP_UNAVAILABLE')
    answered()
    return 'revoked'
  })
  const at = (idp: string, refreshToken: string): OwedRevocation => ({
    idp,
    registration: undefined,
    refreshToken,
  })
  revocations.add(at('partner', 'p1'), log)
  revocations.add(at('partner', 'p2'), log)
  revocations.add(at('corp', 'c1'), log)
  await within(done, "corp's revocation", 10_000)
  t.same(seen, ['p1', 'c1'], "corp's is made in the pass partner's IdP failed, and partner's next waits")
  t.equal(revocations.size, 2, "partner's stay owed")
  revocations.close()
})

/**
 * Regression: a pass tried what was owed one at a time, so a revocation
 * the IdP held open (no answer until the IdP's `timeout`, 10 s by default)
 * held every other provider's owed revocations behind it for that long,
 * each pass, for the hour it was owed.
 */
t.test("one provider's IdP holding a revocation open does not hold another's", async (t) => {
  const { log } = logged()
  const revocations = new OwedRevocations({ log })
  const seen: string[] = []
  let hangUp!: () => void
  const hung = new Promise<void>((resolve) => {
    hangUp = resolve
  })
  let answered!: () => void
  const done = new Promise<void>((resolve) => {
    answered = resolve
  })
  revocations.serve(async (what) => {
    seen.push(what.refreshToken)
    if (what.idp === 'partner') {
      // Its IdP's timeout, which the test lets come only once corp's is made.
      await hung
      throw gatehouseError('GATEHOUSE_ERR_IDP_UNAVAILABLE')
    }
    answered()
    return 'revoked'
  })
  const at = (idp: string, refreshToken: string): OwedRevocation => ({
    idp,
    registration: { issuer: `https://${idp}.example`, clientId: 'gatehouse' },
    refreshToken,
  })
  revocations.add(at('partner', 'p1'), log)
  revocations.add(at('partner', 'p2'), log)
  revocations.add(at('corp', 'c1'), log)
  t.teardown(() => {
    hangUp()
    revocations.close()
  })
  await within(done, "corp's revocation while partner's is held open", 5_000)
  t.same(
    seen,
    ['p1', 'c1'],
    "corp's is made while partner's IdP holds its first open, and partner's next waits",
  )
  t.equal(revocations.size, 2, "partner's both stay owed, corp's is made")
})
