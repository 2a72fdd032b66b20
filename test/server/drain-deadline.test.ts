import t from 'tap'
import { DrainDeadline } from '../../src/server/drain-deadline.js'

t.test('drops what waits a quarter of the drain before its end, and at once once it is over', async (t) => {
  const drain = new DrainDeadline()
  // The drain's timer keeps no process alive (a signal's force-exit timer does): this does, meanwhile.
  const alive = setInterval(() => {}, 1_000)
  t.teardown(() => clearInterval(alive))
  const started = performance.now()
  const dropped = new Promise<number>((resolve) => drain.onEnd(() => resolve(performance.now())))
  let cancelled = false
  const cancel = drain.onEnd(() => {
    cancelled = true
  })
  cancel()
  drain.start(400)
  drain.start(60_000) // a second start changes nothing
  const at = (await dropped) - started
  t.ok(at >= 290 && at < 5_000, `dropped after ${Math.round(at)} ms: 400 less a quarter`)
  t.notOk(cancelled, 'a cancelled wait is not called')
  let late = false
  drain.onEnd(() => {
    late = true
  })
  t.ok(late, 'a wait that comes after the end is called at once')
})
