import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import type { Test } from 'tap'
import { INLINE_CHECK_BYTES, RELOAD_CHECK_LIMITS, startCheckThread } from '../../src/server/reload-check.js'
import type { ReloadRetry } from '../../src/server/reload-retry.js'
import { mkfifo } from './fifo.js'
import { route } from './gateway.js'
import { configText, LogLines, startReloadable } from './reloadable.js'

/*
 * A reload's check thread stuck as on a stalled network mount, for the
 * tests of reload-check.ts and reload-retry.ts. No real file here stalls
 * (a FIFO is refused unread): the thread is started through the
 * reloader's seam, and blocks in open(2) on a FIFO, a real system call
 * that `terminate()` cannot interrupt, until the test writes to it.
 */

/**
 * ms: what a real check may take here, on a loaded machine, and what a
 * stuck one is refused after. It was 3 s, and a real check of the edit
 * (a fresh thread loading the config modules through the test's
 * TypeScript hooks, then the schema) took 3.7 s with both CPUs busy: it
 * was refused for time, retried, and the file applied late or not at all.
 */
export const CHECK_BOUND = 10_000

/** The refusal of a check that ran past CHECK_BOUND. */
export const REFUSED_FOR_TIME = new RegExp(`^checking the file took longer than ${CHECK_BOUND / 1000} s`)

/**
 * A gateway whose reloads check on a thread stuck reading a FIFO (a stalled
 * mount) until `unstall`, or, `parsing`, on one that runs JavaScript until
 * ended, with an edit written for them to check.
 */
export async function stalledStack(
  t: Test,
  options: { parsing?: boolean; reloadRetry?: ReloadRetry; watch?: boolean } = {},
) {
  const stallDir = mkdtempSync(join(tmpdir(), 'gatehouse-check-stall-'))
  const fifo = join(stallDir, 'mount')
  mkfifo(fifo)
  /** `startedAt`: when each thread was started, `performance.now()`. */
  const threads = { stalling: true, started: 0, out: 0, most: 0, startedAt: [] as number[] }
  const log = new LogLines()
  const stack = await startReloadable(
    t,
    (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
    {
      watch: options.watch ? { debounce: 50 } : false,
      logStream: log.stream,
      input: { logLevel: 'info' },
      ...(options.reloadRetry ? { reloadRetry: options.reloadRetry } : {}),
      reloadCheck: { ...RELOAD_CHECK_LIMITS, timeout: CHECK_BOUND },
      reloadCheckThread: (input, limits) => {
        threads.started++
        threads.startedAt.push(performance.now())
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
