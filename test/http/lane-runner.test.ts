/**
 * LaneRunner on its own, on a fake clock: each lane's backoff is its own,
 * one timer is set, for the lane due first, the lanes are tried alongside
 * one another, and the shutdown's last pass tries every lane whatever its
 * backoff and ends when its signal aborts. The two queues built on it are
 * tested with their peers (retry-queue.test.ts, held-logout-tokens.test.ts,
 * and the one-idp-down / one-issuer-away tests).
 */
import t from 'tap'
import type { LaneClock } from '../../src/http/lane-backoff.js'
import { LaneRunner, type Reached } from '../../src/http/lane-runner.js'
import { within } from '../helpers/within.js'

interface Timer {
  readonly at: number
  readonly fire: () => void
}

/** A clock that moves only when told, and the timers set on it. */
function fakeClock() {
  let now = 0
  const timers = new Set<Timer>()
  const clock: LaneClock = {
    now: () => now,
    after: (ms, fire) => {
      const timer = { at: now + ms, fire }
      timers.add(timer)
      return () => void timers.delete(timer)
    },
  }
  return {
    clock,
    now: () => now,
    /** When each timer set fires. */
    timers: () => [...timers].map((timer) => timer.at),
    /** Moves the clock on to `to`, firing each timer due on the way in turn, and what it started then does. */
    async advance(to: number) {
      for (;;) {
        const next = [...timers].filter((timer) => timer.at <= to).sort((a, b) => a.at - b.at)[0]
        if (next === undefined) break
        timers.delete(next)
        now = next.at
        next.fire()
        await settled()
      }
      now = to
      await settled()
    },
  }
}

/** Until the promise callbacks a firing queued have run. */
const settled = () => new Promise((resolve) => setImmediate(resolve))

/** A promise, and what settles it. */
function signal<T = void>() {
  let settle!: (value: T) => void
  const promise = new Promise<T>((resolve) => {
    settle = resolve
  })
  return { promise, settle }
}

/**
 * A runner over the lanes owed in `owed`, each lane's part of a pass
 * answered by `answer`; `tries` says which lane was tried when, and
 * `open` how many lanes' parts are under way at once, at the most.
 */
function runnerOf(answer: (lane: string, stop: AbortSignal) => Reached | Promise<Reached>) {
  const fake = fakeClock()
  const owed = new Set<string>()
  const tries: [string, number][] = []
  let open = 0
  const most = { open: 0 }
  const runner = new LaneRunner({
    firstDelay: 100,
    maxDelay: 800,
    lanes: () => owed,
    tryLane: async (lane, stop) => {
      tries.push([lane, fake.now()])
      most.open = Math.max(most.open, ++open)
      try {
        return await answer(lane, stop)
      } finally {
        open--
      }
    },
    clock: fake.clock,
  })
  const owe = (lane: string) => {
    owed.add(lane)
    runner.owe(lane)
  }
  const paid = (lane: string) => {
    owed.delete(lane)
    runner.forget(lane)
  }
  const triesOf = (lane: string) => tries.filter(([name]) => name === lane).map(([, at]) => at)
  return { ...fake, runner, owe, paid, tries, triesOf, most }
}

t.test(
  "a lane's delay doubles per pass its peer is away, up to the most, and is back once it answers; another lane keeps its own",
  async (t) => {
    let back = false
    const lanes = runnerOf((lane) => (lane === 'down' && !back ? 'away' : 'reached'))
    t.teardown(() => lanes.runner.close())
    lanes.owe('down')
    await lanes.advance(1_500)
    t.same(lanes.triesOf('down'), [100, 300, 700, 1_500], '100 ms, then 200, 400, and 800 ms apart')
    await lanes.advance(2_300)
    t.same(lanes.triesOf('down').at(-1), 2_300, 'held at the most, 800 ms')
    lanes.owe('up')
    await lanes.advance(2_400)
    t.same(
      lanes.triesOf('up'),
      [2_400],
      "a lane owed meanwhile is tried after its own first delay, not down's",
    )
    back = true
    await lanes.advance(3_100)
    await lanes.advance(3_200)
    t.same(lanes.triesOf('down').slice(-2), [3_100, 3_200], 'answered: back to the first delay')
  },
)

t.test('one timer is set, for the lane due first, brought forward by one due sooner', async (t) => {
  const lanes = runnerOf(() => 'away')
  t.teardown(() => lanes.runner.close())
  lanes.owe('a')
  await lanes.advance(300)
  t.same(lanes.timers(), [700], "a's third pass, 400 ms after its second")
  lanes.owe('b')
  t.same(lanes.timers(), [400], "one timer, brought forward to b's first pass")
  await lanes.advance(400)
  t.same(lanes.tries.slice(-1), [['b', 400]], 'b is tried then, on its own')
  t.same(lanes.timers(), [600], "one timer: b's second pass, before a's third")
  lanes.paid('b')
  await lanes.advance(700)
  t.same(
    lanes.tries.slice(-1),
    [['a', 700]],
    'a timer for a lane paid meanwhile passes nothing, and is set again',
  )
  t.same(lanes.timers(), [1_500], "a's next")
  lanes.paid('a')
  await lanes.advance(1_500)
  t.same(lanes.timers(), [], 'nothing owed: no timer')
})

t.test(
  'the lanes are tried alongside one another: one held open holds back no other, nor is it tried twice at once',
  async (t) => {
    const slow = signal<Reached>()
    const lanes = runnerOf((lane) => {
      if (lane === 'slow') return slow.promise
      if (lane === 'late') lanes.paid('late')
      return 'reached'
    })
    t.teardown(() => lanes.runner.close())
    lanes.owe('slow')
    lanes.owe('fast')
    await lanes.advance(100)
    t.same(
      lanes.tries,
      [
        ['slow', 100],
        ['fast', 100],
      ],
      'both tried at their first pass',
    )
    lanes.paid('fast')
    lanes.owe('late')
    t.same(lanes.timers(), [200], "late's first pass; none for slow, a pass is at it")
    await lanes.advance(1_000)
    t.same(lanes.triesOf('late'), [200], "late's tried while slow's try is still open")
    t.same(lanes.triesOf('slow'), [100], 'slow is left out of the passes started meanwhile')
    t.equal(lanes.most.open, 2, 'slow and one other at once')
    slow.settle('away')
    await settled()
    t.same(lanes.timers(), [1_200], "once done, slow's next pass is set, 200 ms on: its peer was away")
  },
)

t.test(
  'the last pass tries every lane now, whatever its backoff, a lane at work once more after its try; nothing is set after it',
  async (t) => {
    const held = signal<Reached>()
    let back = false
    const lanes = runnerOf((lane) => {
      if (lane === 'held' && lanes.triesOf('held').length === 1) return held.promise
      return back ? 'reached' : 'away'
    })
    t.teardown(() => lanes.runner.close())
    lanes.owe('away')
    await lanes.advance(700)
    t.same(lanes.timers(), [1_500], "away's next pass is 800 ms on")
    lanes.owe('held')
    await lanes.advance(800)
    back = true
    const last = lanes.runner.lastPass(new AbortController().signal)
    t.same(lanes.tries.slice(-1), [['away', 800]], 'away is tried at once, not at 1,500')
    t.same(lanes.timers(), [], 'and no timer is left set')
    held.settle('away')
    await within(last, 'the last pass')
    t.same(lanes.triesOf('held'), [800, 800], 'held is tried once more after the try under way')
    lanes.owe('late')
    t.same(lanes.timers(), [], 'nothing is set after it')
    t.equal(lanes.runner.lastPass(new AbortController().signal), last, 'once, however many ask')
  },
)

t.test(
  "the last pass ends when its signal aborts, a lane's try still hanging, and the lanes' signal tells the tries under way",
  async (t) => {
    const told = signal<string>()
    const lanes = runnerOf((lane, stop) => {
      // A try that heeds no signal: a peer holding it open until its timeout.
      if (lane === 'deaf') return new Promise<Reached>(() => {})
      return new Promise<Reached>((resolve) =>
        stop.addEventListener('abort', () => {
          told.settle(lane)
          resolve('stopped')
        }),
      )
    })
    t.teardown(() => lanes.runner.close())
    lanes.owe('hung')
    lanes.owe('deaf')
    const stop = new AbortController()
    const last = lanes.runner.lastPass(stop.signal)
    t.same(
      lanes.tries,
      [
        ['hung', 0],
        ['deaf', 0],
      ],
      'both tried at once',
    )
    stop.abort()
    await within(last, 'the last pass, once stopped')
    t.equal(await within(told.promise, 'the try told'), 'hung', 'the try under way is told to stop')
  },
)
t.test('a signal aborted already ends the last pass at once, and tells the tries it starts', async (t) => {
  const lanes = runnerOf((_lane, stop) => (stop.aborted ? 'stopped' : 'reached'))
  t.teardown(() => lanes.runner.close())
  lanes.owe('a')
  const stop = new AbortController()
  stop.abort()
  await within(lanes.runner.lastPass(stop.signal), 'the last pass')
  t.same(lanes.triesOf('a'), [0], 'tried with its signal aborted: the owner starts no try')
})

t.test('a lane paid and owed again while a pass is at it keeps the backoff the pass sets', async (t) => {
  const open = signal<Reached>()
  const lanes = runnerOf(() => (lanes.triesOf('a').length === 2 ? open.promise : 'away'))
  t.teardown(() => lanes.runner.close())
  lanes.owe('a')
  await lanes.advance(300)
  t.same(lanes.triesOf('a'), [100, 300], 'away at 100; at 300 its try is held open')
  lanes.paid('a')
  lanes.owe('a')
  open.settle('away')
  await settled()
  t.same(lanes.timers(), [700], 'its peer away a third time: 400 ms on, not afresh')
})

t.test('a runner not ready sets no timer; one closed forgets its lanes', async (t) => {
  let ready = false
  const fake = fakeClock()
  const runner = new LaneRunner({
    firstDelay: 100,
    maxDelay: 800,
    lanes: () => ['a'],
    tryLane: async () => 'reached',
    ready: () => ready,
    clock: fake.clock,
  })
  runner.owe('a')
  t.same(fake.timers(), [], 'not ready: no timer')
  ready = true
  runner.schedule()
  t.same(fake.timers(), [100], 'ready: set for its first pass')
  runner.close()
  t.same(fake.timers(), [], 'closed: cleared')
  runner.owe('a')
  runner.schedule()
  t.same(fake.timers(), [], 'and nothing is set after')
  t.ok(runner.closed)
})
