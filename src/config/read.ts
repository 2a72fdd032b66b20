import { isUtf8 } from 'node:buffer'
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import { ConfigError } from './errors.js'

/**
 * The largest config file read, in bytes: 1 MiB, the most a Kubernetes
 * ConfigMap can hold ("The data stored in a ConfigMap cannot exceed 1 MiB",
 * kubernetes.io/docs/concepts/configuration/configmap). A real config is a
 * few KiB; a larger file is a mistake, and parsed whole on a reload it
 * would stall every request for seconds and take gigabytes of memory.
 */
export const MAX_CONFIG_FILE_BYTES = 1_048_576 // 1 MiB

// open(2): O_NONBLOCK makes the open of a FIFO return at once, with no
// writer, instead of blocking the thread until one comes; the fstat that
// follows then refuses it. Opening follows symlinks, so a ConfigMap's
// `routes.yaml -> ..data/routes.yaml` is judged by the regular file it
// names. Windows has no O_NONBLOCK and no FIFOs at a path.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0)

/** How a refusal names the file read: `a` in the rule it breaks, `the` where reading it failed. */
export interface FileNaming {
  readonly a: string
  readonly the: string
}

const CONFIG_FILE: FileNaming = { a: 'a config file', the: 'the config file' }

/** Why a file was not read; its message is the reason, without the file's name. */
export class FileRefused extends Error {
  override readonly name = 'FileRefused'
}

/**
 * The bytes of the config file, read from the main thread: for the start
 * and `gatehouse check`, where nothing else is waiting. Throws a
 * `ConfigError` naming `file` when it cannot be opened, is not a regular
 * file (a FIFO, a device, a directory), or holds more than `limit` bytes,
 * whether its size says so or it grows while it is read.
 */
export function readConfigFileSync(file: string, limit = MAX_CONFIG_FILE_BYTES): Buffer {
  try {
    return readFileWithinSync(file, limit, CONFIG_FILE)
  } catch (err) {
    throw err instanceof FileRefused ? problem(file, err.message) : err
  }
}

/**
 * A file the config names (a key, a certificate), by the config file's
 * rules: a regular file, opened without blocking, of at most `limit`
 * bytes. A FIFO there would otherwise hang the reload that reads it, on
 * the event loop. Throws `FileRefused`.
 */
export function readFileWithinSync(file: string, limit: number, naming: FileNaming): Buffer {
  let fd: number
  try {
    fd = openSync(file, OPEN_FLAGS)
  } catch (err) {
    throw unreadable(naming, err)
  }
  try {
    refuseUnlessFit(fstatSync(fd), limit, naming)
    const buffer = Buffer.allocUnsafe(limit + 1)
    let length = 0
    while (length <= limit) {
      const n = readSync(fd, buffer, length, limit + 1 - length, null)
      if (n === 0) break
      length += n
    }
    return fitted(buffer, length, limit, naming)
  } catch (err) {
    throw err instanceof FileRefused ? err : unreadable(naming, err)
  } finally {
    closeSync(fd)
  }
}

/**
 * `readConfigFileSync` for a running gateway (a reload, the watch): each
 * step runs on libuv's thread pool, so a file on a stalled network mount
 * holds one of its threads, never the event loop that answers requests.
 */
export async function readConfigFile(file: string, limit = MAX_CONFIG_FILE_BYTES): Promise<Buffer> {
  let handle: FileHandle
  try {
    handle = await open(file, OPEN_FLAGS)
  } catch (err) {
    throw problem(file, unreadable(CONFIG_FILE, err).message)
  }
  try {
    refuseUnlessFit(await handle.stat(), limit, CONFIG_FILE)
    const buffer = Buffer.allocUnsafe(limit + 1)
    let length = 0
    while (length <= limit) {
      const { bytesRead } = await handle.read(buffer, length, limit + 1 - length, null)
      if (bytesRead === 0) break
      length += bytesRead
    }
    return fitted(buffer, length, limit, CONFIG_FILE)
  } catch (err) {
    throw problem(file, (err instanceof FileRefused ? err : unreadable(CONFIG_FILE, err)).message)
  } finally {
    await handle.close()
  }
}

/**
 * The config file's bytes as text. Throws a `ConfigError` naming the first
 * line that is not UTF-8: decoded anyway, its bytes would become U+FFFD,
 * and a Latin-1 `ä` in a secret or a client id would be sent as another
 * value than the one the file holds, with nothing said.
 */
export function configText(bytes: Buffer, source: string): string {
  if (isUtf8(bytes)) return bytes.toString('utf8')
  // A newline byte is never part of a longer UTF-8 sequence: each line is
  // UTF-8 or not on its own.
  let line = 1
  for (let start = 0; ; line++) {
    const end = bytes.indexOf(0x0a, start)
    if (end === -1 || !isUtf8(bytes.subarray(start, end))) break
    start = end + 1
  }
  throw new ConfigError(source, [
    {
      path: '',
      line,
      message:
        'is not UTF-8 text (Latin-1? UTF-16?); a config file must be UTF-8: convert it, e.g. iconv -f LATIN1 -t UTF-8',
    },
  ])
}

/** Refuses what is not a regular file, or says it is larger than `limit`, before a byte is read. */
function refuseUnlessFit(stats: Stats, limit: number, naming: FileNaming): void {
  if (!stats.isFile())
    throw new FileRefused(
      `is ${kindOf(stats)}, not a regular file: ${naming.a} must be a regular file or a symlink to one`,
    )
  if (stats.size > limit)
    throw new FileRefused(`is ${stats.size} bytes; ${naming.a} may be at most ${sizeText(limit)}`)
}

/**
 * The `length` bytes read, copied out of the read buffer so that it is not
 * kept; refused past `limit`. The size fstat gave is no bound: the file may
 * grow between the fstat and the read, and files such as those of /proc
 * say they are empty.
 */
function fitted(buffer: Buffer, length: number, limit: number, naming: FileNaming): Buffer {
  if (length > limit)
    throw new FileRefused(`is more than ${limit} bytes; ${naming.a} may be at most ${sizeText(limit)}`)
  return Buffer.from(buffer.subarray(0, length))
}

function kindOf(stats: Stats): string {
  if (stats.isFIFO()) return 'a FIFO (named pipe)'
  if (stats.isDirectory()) return 'a directory'
  if (stats.isCharacterDevice()) return 'a character device'
  if (stats.isBlockDevice()) return 'a block device'
  if (stats.isSocket()) return 'a socket'
  return 'of another kind'
}

function sizeText(bytes: number): string {
  const mib = 1_048_576
  return bytes % mib === 0 ? `${bytes / mib} MiB` : `${bytes} bytes`
}

function unreadable(naming: FileNaming, err: unknown): FileRefused {
  const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message
  return new FileRefused(`cannot read ${naming.the}: ${reason}`)
}

function problem(file: string, message: string): ConfigError {
  return new ConfigError(file, [{ path: '', message }])
}
