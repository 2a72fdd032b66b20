/**
 * A reload refused because its check's thread stalled past its limit is
 * retried once that thread exits. A newer reload (an edit, a SIGHUP)
 * reads the file as it is then, and drops a retry waiting on a timer; it
 * did not drop one waiting for the thread, which then read the file again
 * after the newer reload had applied it, as a retry of a refusal that no
 * longer stood (and, refused in turn, started a round of retries of its
 * own). The newer reload here is checked on the event loop, as a file of
 * up to 8 KiB that names no other is, so the stuck thread does not hold
 * it up.
 */
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { configText } from '../helpers/reloadable.js'
import { CHECK_BOUND, stalledStack } from '../helpers/stalled-check.js'
import { pollUntil, within } from '../helpers/within.js'

t.test('an edit applied while a retry waits for a stuck check thread drops that retry', async (t) => {
  const stack = await stalledStack(t, { watch: true })
  const { running, log, threads, unstall, configMap, upstream } = stack
  // The watch's reload of the large edit stalledStack wrote: its check's thread is stuck.
  const waiting = await log.seen(
    'the retry waiting for the thread',
    (l) => l.code === 'GATEHOUSE_CONFIG_RELOAD_RETRY' && l.retry === 1,
    3 * CHECK_BOUND,
  )
  t.match(waiting.msg, /once the thread that checked it has exited/)

  // A newer edit, small, checked on the event loop while the thread is still stuck.
  configMap.write(
    configText({
      ...stack.input,
      routes: [
        route('/api/public', upstream.url, { token: 'none', csrf: false }),
        route('/api/newer', upstream.url),
      ],
    }),
  )
  const applied = await log.seen('the newer edit applied', (l) => l.code === 'GATEHOUSE_CONFIG_RELOADED')
  t.equal(applied.trigger, 'file')
  t.same(
    running.config.routes.map((r) => r.path),
    ['/api/public', '/api/newer'],
    'the newer edit runs',
  )
  t.match(
    log.lines.find((l) => /the pending retry is dropped/.test(l.msg)),
    { trigger: 'file' },
    'the retry waiting for the thread is dropped, and the log says so',
  )

  // The mount answers: the thread exits, and nothing reads the file for the dropped retry.
  unstall()
  await pollUntil(async () => threads.out === 0, 3 * CHECK_BOUND)
  // Behind any reload the exit set off: a call reads the file once that is done.
  t.equal((await within(running.reload(), 'a reload after the exit', 3 * CHECK_BOUND)).result, 'unchanged')
  t.same(
    log.lines.filter((l) => l.trigger === 'retry' || /^config reload: retry/.test(l.msg)).map((l) => l.msg),
    [],
    'no retry ran once the thread exited',
  )
  t.equal(threads.started, 1, 'and no check thread was started for it')
  t.same(
    running.config.routes.map((r) => r.path),
    ['/api/public', '/api/newer'],
    'the newer edit still runs',
  )
})
