import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import t from 'tap'
import { INLINE_CHECK_BYTES, RELOAD_CHECK_LIMITS, startCheckThread } from '../../src/server/reload-check.js'
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

t.test(
  'a check thread that never exits is the only one: later reloads wait for it, and the file is read again once it exits',
  async (t) => {
    const stallDir = mkdtempSync(join(tmpdir(), 'gatehouse-check-stall-'))
    const fifo = join(stallDir, 'mount')
    mkfifo(fifo)
    let stalling = true
    let started = 0
    let out = 0
    let most = 0
    const log = new LogLines()
    const stack = await startReloadable(
      t,
      (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
      {
        watch: false,
        logStream: log.stream,
        input: { logLevel: 'info' },
        reloadCheck: { ...RELOAD_CHECK_LIMITS, timeout: CHECK_BOUND },
        reloadCheckThread: (input, limits) => {
          started++
          if (!stalling) return startCheckThread(input, limits)
          // The read of a file on the stalled mount, as reload-check-worker.ts would make it.
          const worker = new Worker(
            "require('node:fs').readFileSync(require('node:worker_threads').workerData)",
            { eval: true, workerData: fifo },
          )
          most = Math.max(most, ++out)
          worker.once('exit', () => out--)
          return worker
        },
      },
    )
    t.teardown(async () => {
      // A thread blocked on the FIFO holds the process open until a writer comes.
      const end = Date.now() + 10_000
      while (out > 0 && Date.now() < end) {
        try {
          closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK))
        } catch {
          // ENXIO: no reader has it open (yet).
        }
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      rmSync(stallDir, { recursive: true, force: true })
    })
    const { running, configMap, upstream } = stack
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

    t.match(await within(running.reload(), 'the reload whose check is stuck', 3 * CHECK_BOUND), {
      result: 'rejected',
      problems: [{ message: /^checking the file took longer than 3 s/ }],
    })
    for (let i = 1; i < RELOADS; i++) {
      t.match(
        await within(running.reload(), `reload ${i + 1} while the thread is still out`, 3 * CHECK_BOUND),
        { result: 'rejected', problems: [{ message: /has not exited yet/ }] },
      )
    }
    t.equal(started, 1, `one thread started for ${RELOADS} reloads while it is stuck`)
    t.equal(most, 1, 'never more than one stuck thread')
    const deferred = await log.seen('the deferral', (l) => l.code === 'GATEHOUSE_CONFIG_RELOAD_DEFERRED')
    t.equal(deferred.level, 40, 'a warning')
    t.equal(running.config.routes.length, 1, 'the running config is kept meanwhile')

    // The mount answers: the thread exits, and the reloader reads the file again by itself.
    stalling = false
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK))
    const applied = await log.seen(
      'the file applied once the thread exited',
      (l) => l.code === 'GATEHOUSE_CONFIG_RELOADED',
      3 * CHECK_BOUND,
    )
    t.equal(applied.trigger, 'retry')
    t.equal(running.config.routes.length, 2, 'the edit runs')
    t.equal(started, 2, 'one thread more, once the stuck one exited')
    t.equal(out, 0)
  },
)
