import { type FSWatcher, watch } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { configDigest, refusalDigest } from './digest.js'
import { readConfigFile } from './read.js'

/** How long the directory must be quiet before the file is read, ms. */
export const DEFAULT_DEBOUNCE = 200 // 200 ms

export interface ConfigWatchOptions {
  /** ms; default `DEFAULT_DEBOUNCE`. */
  readonly debounce?: number
  /**
   * The watch itself failed, or the directory is there but refuses a watch
   * (no read permission, no inotify watch left): changes are not seen.
   */
  readonly onError?: (err: Error) => void
  /**
   * The `configDigest` of the bytes the caller runs on (`loadConfigFile`):
   * if the file holds others when the watch starts, that is a change.
   * Default: the file as the watch first finds it is no change.
   */
  readonly baseline?: string
  /** How the file is read; default `readConfigFile`. Tests only: a stalled mount is a fault no real file here shows. */
  readonly read?: (file: string) => Promise<Buffer>
}

export interface ConfigWatch {
  /**
   * Resolves once the file's first contents are known, so a change after
   * it is seen; `onChange` has been called by then if they differ from
   * `baseline`.
   */
  readonly ready: Promise<void>
  close(): void
}

/**
 * Calls `onChange` when the contents of `file` change, however they are
 * replaced. A Kubernetes ConfigMap volume never writes the file: the file
 * is a symlink through `..data`, itself a symlink to a timestamped
 * directory, and an update renames a new `..data` over the old one, so
 * the path keeps its name while what it resolves to changes at once. A
 * watch on the file would keep following the old, deleted inode; the
 * watch is on the directory, and every event there leads to reading the
 * file again. Events come in bursts (an editor's write-and-rename, the
 * kubelet's several renames), so the read waits until the directory has
 * been quiet for `debounce` ms, and `onChange` runs only when the bytes
 * differ from those last seen: a resync that swaps in the same contents
 * under a new inode is no change. A directory replaced whole is followed.
 * At most one read of the file is in flight: events while one is out are
 * one more read once it returns, so a stalled mount holds one pool thread.
 */
export function watchConfigFile(
  file: string,
  onChange: () => void,
  options: ConfigWatchOptions = {},
): ConfigWatch {
  const path = resolve(file)
  const debounce = options.debounce ?? DEFAULT_DEBOUNCE
  let last = options.baseline
  let timer: NodeJS.Timeout | undefined
  let closed = false

  // A missing file (between a delete and a create) hashes as refused: its
  // return is a change, and reading it then reports what is wrong with it.
  // So does one the reload would refuse unread (read.ts): a FIFO put in its
  // place would otherwise hold a pool thread in open(2) until a writer
  // came, and each event after it one more, until fs work stopped.
  const read = options.read ?? readConfigFile
  const digest = () => read(path).then(configDigest, refusalDigest)
  // One read at a time: on a stalled network mount (an NFS hard mount, a
  // FUSE server that stopped answering) a read holds one of libuv's four
  // pool threads until the mount answers, and DNS lookups, async crypto
  // and every other file operation share them. A read per quiet burst of
  // events would use them all up after four, and every new connection by
  // host name would hang. Events meanwhile are one check after it returns.
  let checking: Promise<void> | undefined
  let again = false
  const check = (): Promise<void> => {
    if (checking !== undefined) {
      again = true
      return checking
    }
    checking = (async () => {
      do {
        again = false
        const now = await digest()
        if (closed) return
        if (now !== last) {
          last = now
          onChange()
        }
      } while (again)
    })().finally(() => {
      checking = undefined
    })
    return checking
  }
  // The caller loaded the file some time before the watch began (a whole
  // app built and listening in between): what changed meanwhile is a
  // change, or a ConfigMap update made then would never be applied.
  const ready =
    last === undefined
      ? digest().then((first) => {
          last ??= first
        })
      : check()

  const schedule = () => {
    clearTimeout(timer)
    timer = setTimeout(() => void ready.then(check), debounce)
    timer.unref()
  }

  const directory = dirname(path)
  let watcher: FSWatcher | undefined
  /** Watches the file's directory; false when it cannot be watched (it is gone, or refuses a watch). */
  const arm = (): boolean => {
    watcher?.close()
    watcher = undefined
    try {
      watcher = watch(directory, { persistent: false }, (_event, name) => {
        // Another file in a shared directory is no concern of ours; in a
        // ConfigMap volume every update renames `..data`.
        if (name !== null && name !== basename(path) && !name.startsWith('..')) return
        schedule()
      })
      watcher.on('error', (err) => {
        watcher?.close()
        watcher = undefined
        if (!parent) options.onError?.(err)
      })
      return true
    } catch (err) {
      // A directory that is gone comes back through the parent's watch. One
      // there that cannot be watched (EACCES: inotify must read it, while the
      // file is read by search alone; ENOSPC: the user's inotify watches are
      // used up) never would be, and the file would never be reloaded.
      if (!parent || !isGone(err)) options.onError?.(err as Error)
      return false
    }
  }

  // A deploy that replaces the whole directory (`mv conf.new conf`, or
  // delete and create) leaves a watch on the old one, which Linux never
  // reports as an error: it just goes quiet. So the parent is watched for
  // that name too, and the directory is watched afresh when it changes.
  let parent: FSWatcher | undefined
  try {
    parent = watch(dirname(directory), { persistent: false }, (_event, name) => {
      if (name !== null && name !== basename(directory)) return
      if (arm()) schedule()
    })
    parent.on('error', () => {
      parent?.close()
      parent = undefined
    })
  } catch {
    // An unwatchable parent (the root, no permission): the directory's own watch is all.
    parent = undefined
  }
  arm()

  return {
    ready,
    close() {
      closed = true
      clearTimeout(timer)
      watcher?.close()
      parent?.close()
    },
  }
}

/** The path, or a directory on it, does not exist (now). */
function isGone(err: unknown): boolean {
  const { code } = err as NodeJS.ErrnoException
  return code === 'ENOENT' || code === 'ENOTDIR'
}
