import { createHash } from 'node:crypto'
import { type FSWatcher, watch } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'

/** How long the directory must be quiet before the file is read, ms. */
export const DEFAULT_DEBOUNCE = 200 // 200 ms

export interface ConfigWatchOptions {
  /** ms; default `DEFAULT_DEBOUNCE`. */
  readonly debounce?: number
  /** The watch itself failed (its directory went away); the file is no longer watched. */
  readonly onError?: (err: Error) => void
}

export interface ConfigWatch {
  /** Resolves once the file's first contents are known, so a change after it is seen. */
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
 * under a new inode is no change.
 */
export function watchConfigFile(
  file: string,
  onChange: () => void,
  options: ConfigWatchOptions = {},
): ConfigWatch {
  const path = resolve(file)
  const debounce = options.debounce ?? DEFAULT_DEBOUNCE
  let last: string | undefined
  let timer: NodeJS.Timeout | undefined
  let closed = false

  // A missing file (between a delete and a create) hashes as absent: its
  // return is a change, and reading it then reports what is wrong with it.
  const digest = () =>
    readFile(path).then(
      (bytes) => createHash('sha256').update(bytes).digest('hex'),
      () => 'absent',
    )
  const check = async () => {
    const now = await digest()
    if (closed || now === last) return
    last = now
    onChange()
  }
  const ready = digest().then((first) => {
    last ??= first
  })

  let watcher: FSWatcher | undefined
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, name) => {
      // Another file in a shared directory is no concern of ours; in a
      // ConfigMap volume every update renames `..data`.
      if (name !== null && name !== basename(path) && !name.startsWith('..')) return
      clearTimeout(timer)
      timer = setTimeout(() => void ready.then(check), debounce)
      timer.unref()
    })
    watcher.on('error', (err) => {
      watcher?.close()
      options.onError?.(err)
    })
  } catch (err) {
    options.onError?.(err as Error)
  }

  return {
    ready,
    close() {
      closed = true
      clearTimeout(timer)
      watcher?.close()
    },
  }
}
