import { execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { configDigest } from '../../src/config/digest.js'
import { watchConfigFile } from '../../src/config/watch.js'
import { typescriptFlags } from '../helpers/child-node.js'
import { mkfifo } from '../helpers/fifo.js'

/** Long enough for any machine to deliver a file event; a missed event fails, it does not hang. */
const BOUND_MS = 5_000

/** A watch on `file` whose changes the test awaits one at a time. */
async function watched(t: Test, file: string) {
  const errors: Error[] = []
  let waiting: (() => void) | undefined
  let changes = 0
  const watch = watchConfigFile(
    file,
    () => {
      changes++
      waiting?.()
    },
    { debounce: 20, onError: (err) => errors.push(err) },
  )
  t.teardown(() => watch.close())
  await watch.ready
  const nextChange = (what: string) =>
    new Promise<void>((resolve, reject) => {
      const bound = setTimeout(() => reject(new Error(`no change seen: ${what}`)), BOUND_MS)
      waiting = () => {
        clearTimeout(bound)
        waiting = undefined
        resolve()
      }
    })
  return { nextChange, errors, changes: () => changes }
}

t.test('an edit of the file is a change', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-watch-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'routes.yaml')
  writeFileSync(file, 'v: 1\n')
  const { nextChange, changes } = await watched(t, file)
  const seen = nextChange('edit')
  writeFileSync(file, 'v: 2\n')
  await seen
  t.equal(changes(), 1)
})

t.test('the directory replaced whole, by rename or by delete and create, is followed', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-watch-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dir = join(root, 'conf')
  const file = join(dir, 'routes.yaml')
  mkdirSync(dir)
  writeFileSync(file, 'v: 1\n')
  const { nextChange, errors } = await watched(t, file)

  // A deploy that builds the new directory beside the old and swaps them.
  mkdirSync(join(root, 'conf.new'))
  writeFileSync(join(root, 'conf.new', 'routes.yaml'), 'v: 2\n')
  let seen = nextChange('directory renamed over')
  renameSync(dir, join(root, 'conf.old'))
  renameSync(join(root, 'conf.new'), dir)
  await seen
  t.pass('the swapped-in directory is read')

  seen = nextChange('edit in the new directory')
  writeFileSync(file, 'v: 3\n')
  await seen
  t.pass('and watched: an edit there is seen')

  seen = nextChange('directory deleted and created')
  rmSync(dir, { recursive: true })
  mkdirSync(dir)
  writeFileSync(file, 'v: 4\n')
  await seen
  seen = nextChange('edit after the re-creation')
  writeFileSync(file, 'v: 5\n')
  await seen
  t.pass('a directory deleted and made again is watched too')
  t.same(errors, [], 'no watch error along the way')
})

t.test(
  'a change made after the caller read the file and before the watch began is seen as it starts',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-watch-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'routes.yaml')
    writeFileSync(file, 'v: 1\n')
    const loaded = configDigest(readFileSync(file))
    writeFileSync(file, 'v: 2\n')

    let changes = 0
    const changed = watchConfigFile(file, () => changes++, { debounce: 20, baseline: loaded })
    t.teardown(() => changed.close())
    await changed.ready
    t.equal(changes, 1, 'the bytes differ from those loaded: a change, by the time the watch is ready')

    let none = 0
    const same = watchConfigFile(file, () => none++, {
      debounce: 20,
      baseline: configDigest(readFileSync(file)),
    })
    t.teardown(() => same.close())
    await same.ready
    t.equal(none, 0, 'the bytes loaded are no change')
  },
)

t.test('a file that cannot be read, then cannot for another reason, is a change each time', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-watch-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'routes.yaml')
  writeFileSync(file, 'v: 1\n')
  const { nextChange, changes } = await watched(t, file)
  let seen = nextChange('deleted')
  rmSync(file)
  await seen
  // Each is refused unread (read.ts); the reload must read it to say why.
  seen = nextChange('a directory in its place')
  mkdirSync(file)
  await seen
  seen = nextChange('a FIFO in its place')
  rmSync(file, { recursive: true })
  mkfifo(file)
  await seen
  t.equal(changes(), 3)
})

/**
 * `node` with `args`, as a process that the file permissions bind: root
 * reads and watches any directory (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH),
 * as a container run as root with its capabilities dropped does not.
 */
function nodeBoundByPermissions(args: readonly string[]): string {
  const node = [process.execPath, ...typescriptFlags, ...args]
  const asRoot = process.getuid?.() === 0
  return execFileSync(
    asRoot ? 'setpriv' : node[0]!,
    asRoot ? ['--bounding-set', '-dac_override,-dac_read_search', '--', ...node] : node.slice(1),
    { encoding: 'utf8', timeout: 30_000 },
  )
}

t.test(
  'a directory that cannot be watched is reported, though its parent can be: the file would never be reloaded',
  async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'gatehouse-watch-'))
    t.teardown(() => {
      chmodSync(dir, 0o755)
      rmSync(root, { recursive: true, force: true })
    })
    const dir = join(root, 'conf')
    mkdirSync(dir)
    writeFileSync(join(dir, 'routes.yaml'), 'v: 1\n')
    // Searchable but not readable: the file is read by its path, while
    // inotify_add_watch(2) needs to read the directory (EACCES).
    chmodSync(dir, 0o311)
    const watch = new URL('../../src/config/watch.ts', import.meta.url).href
    const script = `
      const { watchConfigFile } = await import(${JSON.stringify(watch)})
      const { readFileSync } = await import('node:fs')
      const read = readFileSync(${JSON.stringify(join(dir, 'routes.yaml'))}, 'utf8')
      const errors = []
      const w = watchConfigFile(${JSON.stringify(join(dir, 'routes.yaml'))}, () => {}, { onError: (err) => errors.push(err.code) })
      await w.ready
      w.close()
      console.log(JSON.stringify({ read, errors }))
    `
    const { read, errors } = JSON.parse(nodeBoundByPermissions(['--input-type=module', '-e', script])) as {
      read: string
      errors: string[]
    }
    t.equal(read, 'v: 1\n', 'the file is read, so a reload would apply it')
    t.same(errors, ['EACCES'], 'the watch says it cannot watch the directory')
  },
)
