/**
 * RetryQueue on its own: the bound over every owner, shared fairly. Until
 * 2026-12-07 a full queue refused whatever came next, so one IdP that
 * stayed away through many logouts filled it and every other IdP's items
 * were refused. The owner that holds the most now gives up its oldest.
 * Each lane's backoff is its own, and a shutdown's last pass tries every
 * lane whatever its backoff. The budget is tested through the two
 * queues built on it (owed-revocations.test.ts, owed-logouts.test.ts).
 */
import { pino } from 'pino'
import t from 'tap'
import { RetryQueue, type Tried } from '../../src/http/retry-queue.js'
import { within } from '../helpers/within.js'

function logged() {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) })
  return { log, lines }
}

interface Item {
  readonly idp: string
  readonly name: string
}
type Attempt = (item: Item) => Promise<Tried>

type Policy = ConstructorParameters<typeof RetryQueue<Item, Attempt>>[0]

/** A queue whose lanes are IdPs, each item tried with the served attempt unless `tryOne` says otherwise. */
function queueOf(
  max: number,
  log: ReturnType<typeof logged>['log'],
  policy: Partial<Pick<Policy, 'firstDelay' | 'maxDelay' | 'tryOne'>> = {},
  clock?: () => number,
) {
  return new RetryQueue<Item, Attempt>(
    {
      firstDelay: 1,
      maxDelay: 1,
      idpOf: (item) => item.idp,
      ownerOf: (item) => item.idp,
      laneOf: (item) => item.idp,
      tryOne: (item, attempt) => attempt(item),
      owed: { code: 'GATEHOUSE_REVOCATION_OWED', msg: 'owed' },
      lost: { code: 'GATEHOUSE_REVOCATION_LOST', msg: 'lost' },
      ...policy,
    },
    { log, max, ...(clock ? { clock } : {}) },
  )
}

const item = (idp: string, name: string): Item => ({ idp, name })
const full = (lines: Record<string, unknown>[]) =>
  lines.filter((l) => l.reason === 'full').map((l) => ({ idp: l.idp, owed: l.owed }))

/** A promise, and what settles it. */
function signal<T = void>() {
  let settle!: (value: T) => void
  const settled = new Promise<T>((resolve) => {
    settle = resolve
  })
  return { settled, settle }
}

// The retry timer is unref'd, as a closing gateway must not wait on it: this keeps the test's process up.
const alive = setInterval(() => {}, 60_000)
t.teardown(() => clearInterval(alive))

t.test(
  'when full, the owner holding the most gives up its oldest; a tie goes against the newcomer',
  async (t) => {
    const { log, lines } = logged()
    const queue = queueOf(3, log, {}, () => 0)
    t.teardown(() => queue.close())
    const tried: string[] = []
    const allTried = signal()
    queue.add(item('down', 'd1'), 60_000, log)
    queue.add(item('down', 'd2'), 60_000, log)
    queue.add(item('down', 'd3'), 60_000, log)
    queue.add(item('up', 'u1'), 60_000, log)
    t.same(full(lines), [{ idp: 'down', owed: 3 }], "the owner that filled it gives one up, not up's")
    queue.add(item('down', 'd4'), 60_000, log)
    t.same(full(lines).length, 2, 'its newest takes the place of its oldest')
    queue.add(item('other', 'o1'), 60_000, log)
    t.same(
      full(lines).at(-1),
      { idp: 'down', owed: 3 },
      'down holds two and gives up again; up and other hold one each',
    )
    queue.add(item('late', 'l1'), 60_000, log)
    t.same(full(lines).at(-1), { idp: 'late', owed: 3 }, 'three owners of one each: the newcomer is refused')
    t.equal(queue.size, 3)
    queue.serve(async (what) => {
      tried.push(what.name)
      if (tried.length === 3) allTried.settle()
      return 'done'
    })
    await within(allTried.settled, 'every item kept tried')
    t.same(tried.sort(), ['d4', 'o1', 'u1'], "down's newest is kept, and up's and other's")
  },
)

t.test('the item being tried is not given up: its try may yet carry it out', async (t) => {
  const { log, lines } = logged()
  const queue = queueOf(2, log, {}, () => 0)
  t.teardown(() => queue.close())
  const tried: string[] = []
  const firstTried = signal()
  const firstAnswer = signal<Tried>()
  const upTried = signal()
  queue.add(item('down', 'd1'), 60_000, log)
  queue.add(item('down', 'd2'), 60_000, log)
  queue.serve(async (what) => {
    tried.push(what.name)
    if (what.name === 'u1') upTried.settle()
    if (what.name !== 'd1') return 'done'
    firstTried.settle()
    return firstAnswer.settled
  })
  await within(firstTried.settled, 'd1 tried')
  queue.add(item('up', 'u1'), 60_000, log)
  t.same(full(lines), [{ idp: 'down', owed: 2 }], "one of down's is given up for up's")
  firstAnswer.settle('done')
  await within(upTried.settled, "up's tried")
  // Until the pass that tried it has taken it out.
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(queue.size, 0)
  t.same(tried, ['d1', 'u1'], 'd1 was carried out; d2, given up while d1 was tried, is not tried after it')
  t.notOk(
    lines.some((l) => l.reason !== 'full' && l.code === 'GATEHOUSE_REVOCATION_LOST'),
    'nothing else lost',
  )
})

t.test("a lane whose peer answers slowly holds back no other lane's item owed meanwhile", async (t) => {
  const { log } = logged()
  const queue = queueOf(10, log, {}, () => 0)
  t.teardown(() => queue.close())
  const slowTried = signal()
  const slowAnswer = signal<Tried>()
  const upTried = signal()
  const slowDone = signal()
  queue.add(item('slow', 's1'), 60_000, log)
  queue.serve(async (what) => {
    if (what.name === 'u1') {
      upTried.settle()
      return 'done'
    }
    slowTried.settle()
    const answer = await slowAnswer.settled
    slowDone.settle()
    return answer
  })
  await within(slowTried.settled, 's1 tried')
  // An IdP answering each revocation just within its timeout, with many
  // owed, kept its pass going for as long as they took; another IdP's
  // item owed meanwhile waited for the next pass, past its budget.
  queue.add(item('up', 'u1'), 60_000, log)
  await within(upTried.settled, "up's item tried while slow's try is still open", 2_000)
  // Until the pass that tried it has taken it out.
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(queue.size, 1, "up's carried out; slow's still being tried")
  slowAnswer.settle('done')
  await within(slowDone.settled, "slow's answered")
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(queue.size, 0, 'and then carried out')
})

t.test("a lane's backoff doubles once per pass of its own, whatever another lane's peer does", async (t) => {
  const { log } = logged()
  // Two lanes whose peers stay away: each pass, both answer `outage`.
  const queue = queueOf(10, log, { firstDelay: 100, maxDelay: 60_000 })
  t.teardown(() => queue.close())
  const passes: number[] = []
  const fourth = signal()
  queue.serve(async (what) => {
    if (what.idp === 'a') {
      passes.push(performance.now())
      if (passes.length === 4) fourth.settle()
    }
    return 'outage'
  })
  queue.add(item('a', 'a1'), 60_000, log)
  queue.add(item('b', 'b1'), 60_000, log)
  await within(fourth.settled, 'four passes', 20_000)
  const gaps = passes.slice(1).map((at, i) => Math.round(at - passes[i]!))
  t.comment(`gaps between passes: ${gaps.join(', ')} ms`)
  // Doubled once per pass of its lane, the gaps are 200, 400 and 800 ms;
  // doubled once per lane away in a pass (two here), as a delay shared by
  // the lanes once risked, 200, 800 and 3,200. A timer fires late, never
  // early, so the last gap tells them apart with 1.2 s to spare.
  t.ok(gaps[2]! < 2_000, `the fourth pass came ${gaps[2]} ms after the third`)
})

/**
 * Regression: one delay was shared by every lane. A peer away for a few
 * passes doubled it, and an item owed to another lane then waited for the
 * away lane's next pass, up to `maxDelay` (30 s for revocations), where its
 * own lane's backoff says `firstDelay`.
 */
t.test("a lane's backoff is its own: one peer away delays no other lane's first try", async (t) => {
  const { log } = logged()
  const queue = queueOf(10, log, { firstDelay: 50, maxDelay: 60_000 })
  t.teardown(() => queue.close())
  const tried: string[] = []
  const fourth = signal()
  const upTried = signal()
  const downAgain = signal()
  queue.serve(async (what) => {
    tried.push(what.name)
    if (what.idp === 'up') {
      upTried.settle()
      return 'done'
    }
    const downTries = tried.filter((name) => name === 'd1').length
    if (downTries === 4) fourth.settle()
    if (downTries === 5) downAgain.settle()
    return 'outage'
  })
  queue.add(item('down', 'd1'), 60_000, log)
  // Its tries 100, 200 and 400 ms apart: down's lane now waits 800 ms.
  await within(fourth.settled, "down's fourth try")
  queue.add(item('up', 'u1'), 60_000, log)
  await within(upTried.settled, "up's first try")
  t.same(
    tried,
    ['d1', 'd1', 'd1', 'd1', 'u1'],
    "up's item is tried after its own 50 ms, before down's next try",
  )
  await within(downAgain.settled, "down's fifth try")
  t.equal(queue.size, 1, "down's stays owed")
})

t.test(
  'the last pass tries every lane at once, whatever its backoff, and a lane at work once more after its try',
  async (t) => {
    const { log, lines } = logged()
    const queue = queueOf(10, log, {
      firstDelay: 100,
      maxDelay: 60_000,
      tryOne: (item, attempt, _log, stop) => (stop.aborted ? Promise.resolve('outage') : attempt(item)),
    })
    t.teardown(() => queue.close())
    const tried: string[] = []
    let back = false
    const thirdAway = signal()
    const heldTried = signal()
    const heldAnswer = signal<Tried>()
    queue.serve(async (what) => {
      tried.push(what.name)
      if (what.name === 'h1' && tried.filter((name) => name === 'h1').length === 1) {
        heldTried.settle()
        return heldAnswer.settled
      }
      if (back) return 'done'
      if (tried.length === 3) thirdAway.settle()
      return 'outage'
    })
    queue.add(item('away', 'a1'), 60_000, log)
    // Tries 100, 200 and 400 ms apart: the next would wait 800 ms.
    await within(thirdAway.settled, "away's third try")
    queue.add(item('held', 'h1'), 60_000, log)
    await within(heldTried.settled, "held's first try, its peer holding it open")
    back = true
    const last = queue.lastPass(new AbortController().signal)
    t.same(tried, ['a1', 'a1', 'a1', 'h1', 'a1'], "away's is tried at once, not 800 ms on")
    heldAnswer.settle('outage')
    await within(last, 'the last pass')
    t.same(tried.slice(5), ['h1'], "held's is tried once more after the try its peer held")
    t.equal(queue.size, 0, 'both carried out')
    t.notOk(
      lines.some((l) => l.code === 'GATEHOUSE_REVOCATION_LOST'),
      'nothing lost',
    )
  },
)

t.test('the last pass ends when it is stopped: a try under way is told, and none starts after', async (t) => {
  const { log, lines } = logged()
  const tried: string[] = []
  const firstTried = signal()
  // Each try held open until the pass is stopped: an IdP that hangs until its timeout.
  const queue = queueOf(10, log, {
    firstDelay: 60_000,
    maxDelay: 60_000,
    tryOne: async (item, _attempt, _log, stop) => {
      tried.push(item.name)
      firstTried.settle()
      await new Promise((resolve) => stop.addEventListener('abort', resolve, { once: true }))
      // Not an outage, which would end the lane's pass anyway: the stop must.
      return 'again'
    },
  })
  queue.serve(async () => 'outage')
  queue.add(item('h', 'h1'), 60_000, log)
  queue.add(item('h', 'h2'), 60_000, log)
  const stop = new AbortController()
  const last = queue.lastPass(stop.signal)
  await within(firstTried.settled, 'the first try')
  stop.abort()
  await within(last, 'the last pass, once stopped')
  // Until the try told to stop has answered.
  await new Promise((resolve) => setImmediate(resolve))
  t.same(tried, ['h1'], 'the try under way is told to stop, and the next is not started')
  queue.close()
  t.match(
    lines.at(-1),
    { code: 'GATEHOUSE_REVOCATION_LOST', reason: 'closed', owed: 2 },
    'both are dropped at the close, and said to be',
  )
})
