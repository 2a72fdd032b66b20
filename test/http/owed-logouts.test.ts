/**
 * OwedLogouts on its own: the logouts a store outage left undone, tried
 * again on one timer until the store answers, each given up and said to
 * be once it cannot be done. The store's answers are the attempts' own,
 * as backchannel-logout-during-a-store-outage.test.ts gets them from a
 * real Redis killed and restarted.
 */
import { pino } from 'pino'
import t from 'tap'
import { gatehouseError } from '../../src/errors.js'
import { type LogoutAttempt, OwedLogouts } from '../../src/http/owed-logouts.js'

function logged() {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) })
  return { log, lines }
}

/** An attempt whose answers are `answers`, in order (the last repeated); `tried` resolves at each call's nth. */
function scripted(answers: (LogoutAttempt | Error)[]) {
  let calls = 0
  const waiters: { n: number; resolve: () => void }[] = []
  const attempt = async (): Promise<LogoutAttempt> => {
    calls++
    for (const w of waiters.filter((w) => w.n <= calls)) w.resolve()
    const answer = answers[Math.min(calls, answers.length) - 1]!
    if (answer instanceof Error) throw answer
    return answer
  }
  const tried = (n: number) =>
    new Promise<void>((resolve) => (calls >= n ? resolve() : waiters.push({ n, resolve })))
  return { attempt, tried, calls: () => calls }
}

// The retry timer is unref'd, as a closing gateway must not wait on it: this keeps the test's process up.
const alive = setInterval(() => {}, 60_000)
t.teardown(() => clearInterval(alive))

const down = () => gatehouseError('GATEHOUSE_ERR_STORE_UNAVAILABLE')
/** Until the round that made the nth call has finished with it. */
const settled = () => new Promise((resolve) => setImmediate(resolve))

t.test('tried again while the store is away, carried out once it answers, said so once', async (t) => {
  const { log, lines } = logged()
  const owed = new OwedLogouts({ log, budgetMs: 60_000 })
  t.teardown(() => owed.close())
  const run = scripted([down(), down(), 3])
  owed.add('k', 'default', run.attempt, log)
  owed.add('k', 'default', run.attempt, log)
  t.equal(owed.size, 1, 'a token owed twice is owed once')
  t.match(lines, [{ level: 40, code: 'GATEHOUSE_BACKCHANNEL_LOGOUT_OWED', idp: 'default' }])
  await run.tried(3)
  await settled()
  t.equal(owed.size, 0)
  t.match(lines.at(-1), {
    level: 30,
    idp: 'default',
    ended: 3,
    msg: 'back-channel logout carried out once the store was back',
  })
  t.equal(run.calls(), 3)
})

t.test('another delivery at work is looked at again; one that did it leaves nothing owed', async (t) => {
  const { log, lines } = logged()
  const owed = new OwedLogouts({ log, budgetMs: 60_000 })
  t.teardown(() => owed.close())
  const held = scripted(['held', 'done'])
  const resent = scripted(['owed'])
  owed.add('a', 'default', held.attempt, log)
  owed.add('b', 'default', resent.attempt, log)
  await held.tried(2)
  await settled()
  t.equal(owed.size, 0)
  t.equal(lines.length, 2, 'nothing said but that each was owed')
})

t.test(
  'given up, and said to be: past its budget, on an error that is not the store, when full, at close',
  async (t) => {
    const { log, lines } = logged()
    let now = 0
    const owed = new OwedLogouts({ log, budgetMs: 1_000, max: 3, clock: () => now })
    const expired = scripted([1])
    const broken = scripted([new Error('boom')])
    const last = scripted([down()])
    owed.add('expired', 'a', expired.attempt, log)
    now = 1_000
    owed.add('broken', 'b', broken.attempt, log)
    owed.add('last', 'c', last.attempt, log)
    owed.add('full', 'd', scripted([1]).attempt, log)
    t.match(lines.at(-1), { level: 50, code: 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST', idp: 'd', reason: 'full' })
    await last.tried(1)
    await settled()
    t.equal(expired.calls(), 0, 'past its budget: every session it could name has expired')
    t.match(
      lines.filter((line) => line.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'),
      [{ idp: 'd' }, { idp: 'a', reason: 'expired' }, { idp: 'b', reason: 'error' }],
    )
    t.equal(owed.size, 1, 'the one the store refused is still owed')
    owed.close()
    t.match(lines.at(-1), { level: 50, code: 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST', reason: 'closed', owed: 1 })
    t.equal(owed.size, 0)
    owed.add('late', 'e', scripted([1]).attempt, log)
    t.equal(owed.size, 0, 'nothing is owed once closed')
  },
)
