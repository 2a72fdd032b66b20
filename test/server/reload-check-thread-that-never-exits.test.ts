import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import t, { type Test } from 'tap'
import { INLINE_CHECK_BYTES, RELOAD_CHECK_LIMITS, startCheckThread } from '../../src/server/reload-check.js'
import type { ReloadRetry } from '../../src/server/reload-retry.js'
import { mkfifo } from '../helpers/fifo.js'
import { route } from '../helpers/gateway.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'
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

/** ms: what a real check may take here, on a loaded machine, and what a stuck one is refused after. */
const CHECK_BOUND = 3_000
const RELOADS = 4

/**
 * A gateway whose reloads check on a thread stuck reading a FIFO (a stalled
 * mount) until `unstall`, or, `parsing`, on one that runs JavaScript until
 * ended, with an edit written for them to check.
 */
async function stalledStack(t: Test, options: { parsing?: boolean; reloadRetry?: ReloadRetry } = {}) {
  const stallDir = mkdtempSync(join(tmpdir(), 'gatehouse-check-stall-'))
  const fifo = join(stallDir, 'mount')
  mkfifo(fifo)
  const threads = { stalling: true, started: 0, out: 0, most: 0 }
  const log = new LogLines()
  const stack = await startReloadable(
    t,
    (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
    {
      watch: false,
      logStream: log.stream,
      input: { logLevel: 'info' },
      ...(options.reloadRetry ? { reloadRetry: options.reloadRetry } : {}),
      reloadCheck: { ...RELOAD_CHECK_LIMITS, timeout: CHECK_BOUND },
      reloadCheckThread: (input, limits) => {
        threads.started++
        // A parse that takes the whole limit: JavaScript, which terminate() ends.
        if (options.parsing) return new Worker('for (;;) {}', { eval: true })
        if (!threads.stalling) return startCheckThread(input, limits)
        // The read of a file on the stalled mount, as reload-check-worker.ts would make it.
        const worker = new Worker(
          "require('node:fs').readFileSync(require('node:worker_threads').workerData)",
          { eval: true, workerData: fifo },
        )
        threads.most = Math.max(threads.most, ++threads.out)
        worker.once('exit', () => threads.out--)
        return worker
      },
    },
  )
  t.teardown(async () => {
    // A thread blocked on the FIFO holds the process open until a writer comes.
    const end = Date.now() + 10_000
    while (threads.out > 0 && Date.now() < end) {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK))
      } catch {
        // ENXIO: no reader has it open (yet).
      }
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    rmSync(stallDir, { recursive: true, force: true })
  })
  const { configMap, upstream } = stack
  // Past the size checked on the event loop, as a config naming a file is.
  configMap.write(
    `${configText({
      ...stack.input,
      routes: [
        route('/api/public', upstream.url, { token: 'none', csrf: false }),
        route('/api/new', upstream.url),
      ],
    })}#${'x'.repeat(INLINE_CHECK_BYTES)}\n`,
  )
  /** The mount answers: the stuck thread's read returns, and it exits. */
  const unstall = () => {
    threads.stalling = false
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK))
  }
  return { ...stack, log, threads, unstall }
}

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
      const { running, log, threads, unstall } = await stalledStack(t)
      t.match(await within(running.reload(), 'the reload whose check is stuck', 3 * CHECK_BOUND), {
        result: 'rejected',
        problems: [{ message: /^checking the file took longer than 3 s/ }],
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
 * 3 s here (30 s in production), for ever. Its retries are bounded as the
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
      problems: [{ message: /^checking the file took longer than 3 s/ }],
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
