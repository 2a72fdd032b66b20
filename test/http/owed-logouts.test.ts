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
import { type LogoutAttempt, OwedLogouts, type OwedLogoutsOptions } from '../../src/http/owed-logouts.js'

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

type Attempt = () => Promise<LogoutAttempt>

/** What is owed here is each logout's own attempt, which the serving app runs. */
function owedLogouts(options: OwedLogoutsOptions & { budgetMs: number }) {
  const owed = new OwedLogouts<Attempt>(options)
  owed.serve((attempt) => attempt())
  const add = (key: string, idp: string, attempt: Attempt, log: OwedLogoutsOptions['log']) =>
    owed.add(key, { idp, what: attempt, budgetMs: options.budgetMs }, log)
  return Object.assign(owed, { owe: add })
}

const down = () => gatehouseError('GATEHOUSE_ERR_STORE_UNAVAILABLE')
/** Until the round that made the nth call has finished with it. */
const settled = () => new Promise((resolve) => setImmediate(resolve))

t.test('tried again while the store is away, carried out once it answers, said so once', async (t) => {
  const { log, lines } = logged()
  const owed = owedLogouts({ log, budgetMs: 60_000 })
  t.teardown(() => owed.close())
  const run = scripted([down(), down(), 3])
  owed.owe('k', 'default', run.attempt, log)
  owed.owe('k', 'default', run.attempt, log)
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
  const owed = owedLogouts({ log, budgetMs: 60_000 })
  t.teardown(() => owed.close())
  const held = scripted(['held', 'done'])
  const resent = scripted(['owed'])
  owed.owe('a', 'default', held.attempt, log)
  owed.owe('b', 'default', resent.attempt, log)
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
    const owed = owedLogouts({ log, budgetMs: 1_000, max: 3, clock: () => now })
    const expired = scripted([1])
    const broken = scripted([new Error('boom')])
    const last = scripted([down()])
    owed.owe('expired', 'a', expired.attempt, log)
    now = 1_000
    owed.owe('broken', 'b', broken.attempt, log)
    owed.owe('last', 'c', last.attempt, log)
    owed.owe('full', 'd', scripted([1]).attempt, log)
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
    owed.owe('late', 'e', scripted([1]).attempt, log)
    t.equal(owed.size, 0, 'nothing is owed once closed')
  },
)

t.test(
  'carried out by the newest app serving; with none serving, it waits; a failed newcomer leaves the old one at it',
  async (t) => {
    const { log } = logged()
    const owed = new OwedLogouts<string>({ log })
    t.teardown(() => owed.close())
    const tried: string[] = []
    let next: (() => void) | undefined
    const serving = (app: string) => async (what: string) => {
      tried.push(`${app}:${what}`)
      next?.()
      return 1
    }
    const triedOnce = () =>
      new Promise<void>((resolve) => {
        next = resolve
      }).then(settled)
    const unserveOld = owed.serve(serving('old'))
    // A reload whose app failed to build: it served, and closed.
    owed.serve(serving('failed'))()
    let done = triedOnce()
    owed.add('a', { idp: 'default', what: 'a', budgetMs: 60_000 }, log)
    await done
    t.same(tried, ['old:a'], 'the app still serving carried it out')
    t.equal(owed.size, 0)

    unserveOld()
    owed.add('b', { idp: 'default', what: 'b', budgetMs: 60_000 }, log)
    t.equal(owed.size, 1, 'with no app serving, it stays owed')
    done = triedOnce()
    owed.serve(serving('new'))
    await done
    t.same(tried, ['old:a', 'new:b'], 'the app that serves next carries it out')
    t.equal(owed.size, 0)
  },
)

t.test("the drain's end reaches the try under way: cut off, it stays owed", async (t) => {
  const { log, lines } = logged()
  const owed = new OwedLogouts<string>({ log })
  let told: AbortSignal | undefined
  let started = () => {}
  const trying = new Promise<void>((resolve) => {
    started = resolve
  })
  // A store that never answers: only the stop ends the wait.
  owed.serve(async (_what, stop) => {
    told = stop
    started()
    return new Promise<LogoutAttempt>((_, reject) =>
      stop.addEventListener('abort', () => reject(new Error('cut off by the drain')), { once: true }),
    )
  })
  owed.add('k', { idp: 'default', what: 'logout', budgetMs: 60_000 }, log)
  const stop = new AbortController()
  const last = owed.lastPass(stop.signal)
  await trying
  stop.abort()
  await last
  await settled()
  t.equal(told?.aborted, true, 'the try was told the drain had ended')
  t.equal(owed.size, 1, 'what it did not carry out is still owed')
  t.notOk(
    lines.some((line) => line.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'),
    'not given up for being cut off',
  )
  owed.close()
  t.match(
    lines.find((line) => line.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'),
    { reason: 'closed', owed: 1 },
    'dropped with the rest as the process closes, and said to be',
  )
})
