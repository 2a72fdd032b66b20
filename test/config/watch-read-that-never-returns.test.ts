import { lookup } from 'node:dns/promises'
import {
  closeSync,
  constants,
  type FSWatcher,
  mkdtempSync,
  openSync,
  rmSync,
  watch,
  writeFileSync,
} from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { configDigest } from '../../src/config/digest.js'
import { readConfigFile } from '../../src/config/read.js'
import { watchConfigFile } from '../../src/config/watch.js'
import { mkfifo } from '../helpers/fifo.js'
import { pollUntil, within } from '../helpers/within.js'

/**
 * The watch reads the file after each quiet burst of events in its
 * directory. On a stalled network mount each read held one of libuv's pool
 * threads until the mount answered, and each burst after it started one
 * more: after four (the pool's default size) DNS lookups, async crypto and
 * every file operation of the process waited behind them, so every new
 * upstream connection by host name hung. No real file here stalls a
 * read; the stall is injected at the watch's read, and holds a real pool
 * thread: a FIFO opened for reading (without O_NONBLOCK, unlike the
 * config reader) blocks in open(2) until a writer comes.
 */

const DEBOUNCE = 20 // ms
const BOUND_MS = 5_000
const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4)

/**
 * A debounce of the test's own on `dir`, twice the watch's: both watches
 * are handed each event in the same turn of the loop, so by the time this
 * one's timer fires, the watch's has fired and begun its read, if it
 * begins one.
 */
function quietAfterEvents(dir: string): { next: () => Promise<void>; close: () => void } {
  let timer: NodeJS.Timeout | undefined
  let quiet: (() => void) | undefined
  const watcher: FSWatcher = watch(dir, { persistent: false }, () => {
    clearTimeout(timer)
    timer = setTimeout(() => quiet?.(), 2 * DEBOUNCE)
  })
  return {
    next: () =>
      within(
        new Promise<void>((resolve) => {
          quiet = () => setImmediate(resolve)
        }),
        'a quiet directory after the edit',
      ),
    close: () => {
      clearTimeout(timer)
      watcher.close()
    },
  }
}

t.test(
  'a read that never returns holds one pool thread however many edits follow, and the file is read again once it returns',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-watch-stall-'))
    const file = join(dir, 'routes.yaml')
    // Outside the watched directory: opening it is no event there.
    const stallDir = mkdtempSync(join(tmpdir(), 'gatehouse-watch-stall-fifo-'))
    const fifo = join(stallDir, 'mount')
    mkfifo(fifo)
    writeFileSync(file, 'v: 0\n')

    let stalling = false
    let started = 0
    let inFlight = 0
    let most = 0
    const read = async (path: string): Promise<Buffer> => {
      started++
      most = Math.max(most, ++inFlight)
      try {
        // The mount answers late, then with the file as it is then.
        if (stalling) await readFile(fifo)
        return await readConfigFile(path)
      } finally {
        inFlight--
      }
    }
    let changes = 0
    const watcher = watchConfigFile(file, () => changes++, {
      debounce: DEBOUNCE,
      baseline: configDigest(Buffer.from('v: 0\n')),
      read,
    })
    const quiet = quietAfterEvents(dir)
    t.teardown(async () => {
      quiet.close()
      watcher.close()
      // Every open of the FIFO blocked in the pool returns once a writer
      // comes; the process cannot end while one is held.
      await pollUntil(
        async () => {
          try {
            closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK))
          } catch {
            // ENXIO: no reader has it open (yet).
          }
          return inFlight === 0
        },
        BOUND_MS,
        'the stalled reads not released',
      )
      rmSync(dir, { recursive: true, force: true })
      rmSync(stallDir, { recursive: true, force: true })
    })
    await watcher.ready
    t.equal(started, 1, 'the file read once as the watch starts')

    stalling = true
    for (let i = 1; i <= threads + 1; i++) {
      const settled = quiet.next()
      writeFileSync(file, `v: ${i}\n`)
      await settled
    }
    t.equal(started, 2, `one read begun for ${threads + 1} edits while it is stalled`)
    t.equal(most, 1, 'never more than one read in flight')
    await within(lookup('localhost'), 'a DNS lookup while the watch is stalled')
    await within(stat(file), 'a file operation while the watch is stalled')
    t.pass('the pool still answers DNS lookups and file operations')
    t.equal(changes, 0, 'no change reported while the read is stalled')

    // The mount answers: that read, then one more for the edits made meanwhile.
    stalling = false
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK))
    await pollUntil(
      async () => changes === 1 && inFlight === 0 && started === 3,
      BOUND_MS,
      'the stalled read and one more not done',
    )
    t.equal(started, 3, 'the edits made during the stall cost one read, once it returned')
    t.equal(changes, 1, 'the last edit is one change')
  },
)
