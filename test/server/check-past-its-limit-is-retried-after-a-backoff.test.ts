/**
 * A reload refused because its check ran past its limit is retried once
 * the check's thread exits. A thread blocked reading a file on a stalled
 * mount exits when the mount answers, minutes on; one whose parse took the
 * time exits as soon as it is told, and its retry ran at once: one
 * limit-long check thread after another, up to `reloadRetry.attempts` of
 * them, with no pause between, where a reload the IdP refused waits 5, 10,
 * 20 s. Each retry now also waits out the backoff, from the refusal.
 */
import t from 'tap'
import { retryDelay } from '../../src/server/reload-retry.js'
import { CHECK_BOUND, REFUSED_FOR_TIME, stalledStack } from '../helpers/stalled-check.js'
import { within } from '../helpers/within.js'

const RETRY = { attempts: 2, delay: 1_500, maxDelay: 3_000 }
/** ms a timer may fire before its due time, by Node's rounding. */
const EARLY = 10

t.test('a check past its limit whose thread ends when told is retried after the backoff', async (t) => {
  const { running, log, threads } = await stalledStack(t, { parsing: true, reloadRetry: RETRY })
  t.match(await within(running.reload(), 'the reload whose check is slow', 3 * CHECK_BOUND), {
    result: 'rejected',
    problems: [{ message: REFUSED_FOR_TIME }],
  })
  t.match(
    log.lines.find((l) => l.code === 'GATEHOUSE_CONFIG_RELOAD_RETRY'),
    {
      retry: 1,
      of: 2,
      retryInMs: 1_500,
      msg: /retry 1 of 2 once the thread that checked it has exited, and in 1500 ms/,
    },
    'the retry and its wait are announced with the refusal',
  )
  await log.seen(
    'the retries given up',
    (l) => l.code === 'GATEHOUSE_CONFIG_RELOAD_RETRY' && l.gaveUp === true,
    6 * CHECK_BOUND,
  )
  t.equal(threads.started, 3, 'the first check and its two retries')
  const [first, second, third] = threads.startedAt as [number, number, number]
  // Each check is refused CHECK_BOUND after its thread starts, and its retry waits from then.
  for (const [n, before, after] of [
    [1, first, second],
    [2, second, third],
  ] as const) {
    const gap = after - before
    t.ok(
      gap >= CHECK_BOUND + retryDelay(RETRY, n) - EARLY,
      `retry ${n} started ${Math.round(gap - CHECK_BOUND)} ms after its refusal, its backoff ${retryDelay(RETRY, n)} ms`,
    )
  }
  t.ok(
    log.lines.some((l) => l.msg === 'config reload: retry 2 of 2'),
    'each retry says so as it starts',
  )
})
