import t from 'tap'
import { CHECK_BOUND, REFUSED_FOR_TIME, stalledStack } from '../helpers/stalled-check.js'
import { within } from '../helpers/within.js'

/**
 * A config that names files (a CA bundle, a key) is checked on a thread of
 * its own, which reads them there, synchronously. On a stalled network
 * mount that read never returns, and a thread blocked in a system call
 * cannot be ended: past its 30 s the check was refused and the thread
 * told to terminate, but it stayed, and each later reload (a SIGHUP, an
 * edit) started one more, so threads and their memory grew without bound.
 * No real file here stalls (a FIFO is refused unread): the thread is
 * started through the reloader's seam, and blocks in open(2) on a FIFO,
 * a real system call that `terminate()` cannot interrupt, until the test
 * writes to it.
 */

const RELOADS = 4

/**
 * With no reload deferred meanwhile, the reload refused because its
 * check's thread stalled was the only one (the watch reports an edit
 * once): nothing read the file again when the thread exited, and the edit
 * waited for the next SIGHUP or edit, as a refused read's no longer does.
 */
for (const meanwhile of [RELOADS - 1, 0])
  t.test(
    meanwhile > 0
      ? 'a check thread that never exits is the only one: later reloads wait for it, and the file is read again once it exits'
      : 'a reload refused for a check thread stuck past its limit is read again once it exits, with no reload meanwhile',
    async (t) => {
      // The retry's backoff short: this is about the read once the thread exits, not its wait.
      const { running, log, threads, unstall } = await stalledStack(t, {
        reloadRetry: { attempts: 5, delay: 100, maxDelay: 100 },
      })
      t.match(await within(running.reload(), 'the reload whose check is stuck', 3 * CHECK_BOUND), {
        result: 'rejected',
        problems: [{ message: REFUSED_FOR_TIME }],
      })
      for (let i = 1; i <= meanwhile; i++) {
        t.match(
          await within(running.reload(), `reload ${i + 1} while the thread is still out`, 3 * CHECK_BOUND),
          { result: 'rejected', problems: [{ message: /has not exited yet/ }] },
        )
      }
      t.equal(threads.started, 1, `one thread started for ${meanwhile + 1} reloads while it is stuck`)
      t.equal(threads.most, 1, 'never more than one stuck thread')
      if (meanwhile > 0) {
        const deferred = await log.seen('the deferral', (l) => l.code === 'GATEHOUSE_CONFIG_RELOAD_DEFERRED')
        t.equal(deferred.level, 40, 'a warning')
      }
      t.equal(running.config.routes.length, 1, 'the running config is kept meanwhile')

      // The mount answers: the thread exits, and the reloader reads the file again by itself.
      unstall()
      const applied = await log.seen(
        'the file applied once the thread exited',
        (l) => l.code === 'GATEHOUSE_CONFIG_RELOADED',
        3 * CHECK_BOUND,
      )
      t.equal(applied.trigger, 'retry')
      t.equal(running.config.routes.length, 2, 'the edit runs')
      t.equal(threads.started, 2, 'one thread more, once the stuck one exited')
      t.equal(threads.out, 0)
    },
  )

/**
 * The negative control: a check that took its whole limit in its parse,
 * not in a read, ends when told, and read again would do so again, every
 * CHECK_BOUND here (30 s in production), for ever. Its retries are bounded as the
 * others are.
 */
t.test(
  'a check past its limit whose thread ends when told is retried no more than reloadRetry allows',
  async (t) => {
    const { running, log, threads } = await stalledStack(t, {
      parsing: true,
      reloadRetry: { attempts: 1, delay: 1, maxDelay: 1 },
    })
    t.match(await within(running.reload(), 'the reload whose check is slow', 3 * CHECK_BOUND), {
      result: 'rejected',
      problems: [{ message: REFUSED_FOR_TIME }],
    })
    const gaveUp = await log.seen(
      'the retries given up',
      (l) => l.code === 'GATEHOUSE_CONFIG_RELOAD_RETRY' && l.gaveUp === true,
      3 * CHECK_BOUND,
    )
    t.equal(gaveUp.retries, 1)
    t.equal(threads.started, 2, 'the first check and its one retry')
    t.equal(
      log.lines.filter((l) => l.code === 'GATEHOUSE_CONFIG_RELOAD_RETRY' && l.retry === 1).length,
      1,
      'one retry, logged',
    )
  },
)
