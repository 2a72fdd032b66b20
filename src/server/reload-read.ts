import { configDigest, refusalDigest } from '../config/digest.js'
import type { ConfigProblem } from '../config/errors.js'
import { readConfigFile } from '../config/read.js'
import { problemsOf } from './reload-check.js'
import { withTimeout } from './with-timeout.js'

/** How a reload reads the file: a seam for tests, as a stalled mount is a fault no real file here shows. */
export interface ReloadRead {
  /** ms: past it the reload is refused, and the file is not read again until the read returns, then at once. */
  readonly timeout: number
  readonly read: (file: string) => Promise<Buffer>
}

/**
 * How long a reload waits for the file's bytes: 30 s, as long as its
 * check may take (reload-check.ts). A file on tmpfs or a local disk is
 * read in a millisecond; one on a stalled network mount never is.
 */
export const RELOAD_READ_TIMEOUT = 30_000 // 30 s

const DEFAULT_READ: ReloadRead = { timeout: RELOAD_READ_TIMEOUT, read: (file) => readConfigFile(file) }

/** What came of one read of the file, each with the digest a reload compares to the last read's. */
export type FileRead =
  | { readonly result: 'read'; readonly bytes: Buffer; readonly digest: string }
  /** Why it could read none (a missing file, a FIFO, one too large); `refusalDigest`. */
  | { readonly result: 'unreadable'; readonly problems: readonly ConfigProblem[]; readonly digest: string }
  /** The read did not return within its timeout; the file is read again once it does. */
  | { readonly result: 'overdue'; readonly problems: readonly ConfigProblem[] }
  /** The shutdown came while it was read. */
  | { readonly result: 'stopped' }

/**
 * Reads the config file for a reload, one read at a time. A read that
 * outlives its reload's wait holds a thread of libuv's pool until it
 * returns (four by default, which DNS lookups and every file operation
 * share), so no other is started (`stalled`) until it does.
 */
export class ReloadReader {
  readonly #read: ReloadRead
  /** Runs once a read that outlived its wait has returned. */
  readonly #returned: () => void
  #stalled: Promise<unknown> | undefined

  constructor(read: ReloadRead = DEFAULT_READ, returned: () => void) {
    this.#read = read
    this.#returned = returned
  }

  /** A read of the file that outlived its reload's wait has not returned yet. */
  get stalled(): boolean {
    return this.#stalled !== undefined
  }

  async read(file: string, stop: AbortSignal): Promise<FileRead> {
    const { timeout } = this.#read
    // The read's own failure is an answer (the file is missing, a FIFO, too
    // large); only its not answering at all is the stall bounded here.
    const reading = this.#read.read(file).then(
      (got) => ({ got }),
      (err: unknown) => ({ err }),
    )
    let answer: Awaited<typeof reading> | undefined
    try {
      answer = await withTimeout(
        reading,
        timeout,
        `reading the config file took longer than ${timeout / 1000} s (a stalled network mount?); it is read again once that read returns`,
        stop,
      )
    } catch (err) {
      // Refused for no fault of the file, as this reload and any meanwhile
      // are, the bytes would be read by nothing else: the watch reports an
      // edit once. So the file is read again as soon as the mount answers.
      this.#stalled = reading.then(() => {
        this.#stalled = undefined
        this.#returned()
      })
      return { result: 'overdue', problems: problemsOf(err) }
    }
    if (answer === undefined) return { result: 'stopped' }
    if ('err' in answer)
      return { result: 'unreadable', problems: problemsOf(answer.err), digest: refusalDigest(answer.err) }
    return { result: 'read', bytes: answer.got, digest: configDigest(answer.got) }
  }
}
