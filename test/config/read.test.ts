import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ConfigError } from '../../src/config/errors.js'
import { loadConfig } from '../../src/config/load.js'
import {
  configText,
  MAX_CONFIG_FILE_BYTES,
  readConfigFile,
  readConfigFileSync,
} from '../../src/config/read.js'
import { mkfifo } from '../helpers/fifo.js'

function directory(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-read-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** What each reader makes of `file`: its bytes as text, or its one problem as `check` would name it. */
async function bothReads(file: string, limit?: number): Promise<[string, string]> {
  const said = (err: unknown) => {
    if (!(err instanceof ConfigError)) throw err
    return `${err.source}: ${err.problems.map((p) => p.message).join('; ')}`
  }
  let sync: string
  try {
    sync = readConfigFileSync(file, limit).toString('utf8')
  } catch (err) {
    sync = said(err)
  }
  return [sync, await readConfigFile(file, limit).then((bytes) => bytes.toString('utf8'), said)]
}

t.test('a FIFO with no writer is refused at once, by name, by both readers', async (t) => {
  const file = join(directory(t), 'routes.yaml')
  mkfifo(file)
  const message = `${file}: is a FIFO (named pipe), not a regular file: a config file must be a regular file or a symlink to one`
  t.same(await bothReads(file), [message, message], 'neither waits for a writer that never comes')
})

t.test("a ConfigMap's symlinks are followed to the regular file they name", async (t) => {
  const dir = directory(t)
  mkdirSync(join(dir, '..2026_12_03_00_00_00.1'))
  writeFileSync(join(dir, '..2026_12_03_00_00_00.1', 'routes.yaml'), 'server: {}\n')
  symlinkSync('..2026_12_03_00_00_00.1', join(dir, '..data'))
  symlinkSync('..data/routes.yaml', join(dir, 'routes.yaml'))
  t.same(await bothReads(join(dir, 'routes.yaml')), ['server: {}\n', 'server: {}\n'])
})

t.test('a directory, a device and a missing file are each named for what they are', async (t) => {
  const dir = directory(t)
  const [dirSync, dirAsync] = await bothReads(dir)
  t.match(dirSync, `${dir}: is a directory, not a regular file`)
  t.equal(dirAsync, dirSync)
  // /dev/zero never ends: read whole, it would grow until memory ran out.
  const [zeroSync, zeroAsync] = await bothReads('/dev/zero')
  t.match(zeroSync, '/dev/zero: is a character device, not a regular file')
  t.equal(zeroAsync, zeroSync)
  const missing = join(dir, 'routes.yaml')
  t.same(await bothReads(missing), [
    `${missing}: cannot read the config file: file not found`,
    `${missing}: cannot read the config file: file not found`,
  ])
})

t.test('a file larger than 1 MiB is refused by its size, one of exactly 1 MiB is read', async (t) => {
  t.equal(MAX_CONFIG_FILE_BYTES, 1024 * 1024, 'what a Kubernetes ConfigMap can hold')
  const dir = directory(t)
  const large = join(dir, 'large.yaml')
  writeFileSync(large, Buffer.alloc(MAX_CONFIG_FILE_BYTES + 1, '#'))
  const refusal = `${large}: is ${MAX_CONFIG_FILE_BYTES + 1} bytes; a config file may be at most 1 MiB`
  t.same(await bothReads(large), [refusal, refusal])
  const fits = join(dir, 'fits.yaml')
  writeFileSync(fits, Buffer.alloc(MAX_CONFIG_FILE_BYTES, '#'))
  const [sync, async] = await bothReads(fits)
  t.equal(sync.length, MAX_CONFIG_FILE_BYTES)
  t.equal(async.length, MAX_CONFIG_FILE_BYTES)
})

t.test('the bound holds while reading, whatever fstat said: a file that says it is empty', async (t) => {
  // proc(5): its files are regular and report a size of 0, and this one
  // holds a line per mapping of this process, well over 1 KiB.
  const refusal = '/proc/self/maps: is more than 1024 bytes; a config file may be at most 1024 bytes'
  t.same(await bothReads('/proc/self/maps', 1024), [refusal, refusal])
})

t.test(
  'a file that is not UTF-8 is refused at its first such line, not read with U+FFFD in it',
  async (t) => {
    const latin1 = Buffer.concat([
      Buffer.from('server:\n  publicUrl: https://app.example.com\noidc:\n  clientId: gateh'),
      Buffer.from([0xe4]), // ä in Latin-1
      Buffer.from('use\n'),
    ])
    const notUtf8 =
      'is not UTF-8 text (Latin-1? UTF-16?); a config file must be UTF-8: convert it, e.g. iconv -f LATIN1 -t UTF-8'
    const said = (read: () => unknown) => {
      try {
        read()
      } catch (err) {
        if (err instanceof ConfigError) return err.problems
        throw err
      }
      return []
    }
    t.same(
      said(() => configText(latin1, 'routes.yaml')),
      [{ path: '', line: 4, message: notUtf8 }],
    )
    const file = join(directory(t), 'routes.yaml')
    writeFileSync(file, latin1)
    t.same(
      said(() => loadConfig(file, {})),
      [{ path: '', line: 4, message: notUtf8 }],
      'as start and check read it',
    )
    const utf16 = Buffer.from('\ufeffserver: {}\n', 'utf16le')
    t.same(
      said(() => configText(utf16, 'routes.yaml')),
      [{ path: '', line: 1, message: notUtf8 }],
    )
    const text = 'clientId: gatehäuse \ufffd\n'
    t.equal(configText(Buffer.from(text), 'routes.yaml'), text, 'UTF-8, U+FFFD written as such included')
  },
)
