/**
 * LaneBackoff on its own: each lane's delay doubles while its peer is
 * away, up to the most, and is back to the first once it answers; the one
 * timer fires at the lane due first, and a lane owed something sooner
 * than the timer is set for brings it forward. The queues that use it
 * (retry-queue.test.ts, held-logout-tokens.test.ts) test it with their peers.
 */
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { LaneBackoff } from '../../src/http/lane-backoff.js'

// The timer is unref'd, as a closing gateway must not wait on it: this keeps the test's process up.
const alive = setInterval(() => {}, 60_000)
t.teardown(() => clearInterval(alive))

/** The time the next timer of `backoff` fires with, for the lanes `pick` takes. */
const fired = (backoff: LaneBackoff, pick?: (lane: string) => boolean) =>
  new Promise<number>((resolve) => backoff.schedule(resolve, pick))

t.test(
  "a lane's delay doubles per pass its peer was away, up to the most, and is back once it answers",
  async (t) => {
    const backoff = new LaneBackoff(1_000, 4_000)
    backoff.owe('idp')
    let before = performance.now()
    for (let pass = 0; pass < 3; pass++) backoff.passed('idp', true)
    let after = performance.now()
    t.notOk(
      backoff.dueBy('idp', before + 3_999),
      'not due before the most (1 s doubled thrice is 8 s, held to 4 s)',
    )
    t.ok(backoff.dueBy('idp', after + 4_000), 'due at the most')
    backoff.owe('idp')
    t.notOk(backoff.dueBy('idp', before + 3_999), 'owed more, a lane in its backoff keeps it')

    before = performance.now()
    backoff.passed('idp', false)
    after = performance.now()
    t.notOk(backoff.dueBy('idp', before + 999), 'answered: not due before the first delay')
    t.ok(backoff.dueBy('idp', after + 1_000), 'but at it')
    backoff.stop(true)
    t.notOk(backoff.dueBy('idp', Number.POSITIVE_INFINITY), 'cleared, it owes nothing')
  },
)

t.test('the timer fires at the lane due first, brought forward by a lane due sooner', async (t) => {
  const backoff = new LaneBackoff(20, 60_000)
  t.teardown(() => backoff.stop(true))
  backoff.owe('away')
  for (let pass = 0; pass < 10; pass++) backoff.passed('away', true)
  // Set for away's next pass, 20 s on: a test that waited for it would time out.
  const late = fired(backoff)
  backoff.owe('back')
  const by = await Promise.race([fired(backoff), late])
  t.ok(backoff.dueBy('back', by), 'the lane owed since fires after its own first delay')
  t.notOk(backoff.dueBy('away', by), 'the lane away is not due then')
})

t.test('a lane the pick leaves out sets no timer for it', async (t) => {
  const backoff = new LaneBackoff(20, 60_000)
  t.teardown(() => backoff.stop(true))
  backoff.owe('busy')
  backoff.owe('free')
  for (let pass = 0; pass < 4; pass++) backoff.passed('free', true)
  const by = await fired(backoff, (lane) => lane !== 'busy')
  t.ok(backoff.dueBy('free', by), 'the timer is for the lane picked')
})
