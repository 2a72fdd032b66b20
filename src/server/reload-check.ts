import { Worker } from 'node:worker_threads'
import { ConfigError, type ConfigProblem } from '../config/errors.js'
import { parseConfig } from '../config/load.js'
import { configText } from '../config/read.js'
import { restartNeededIn, restartNeededOf } from '../config/reload-policy.js'
import type { GatehouseConfig } from '../config/types.js'

/** What a reload checks: the bytes it read, against the config running. */
export interface ReloadCheckInput {
  readonly bytes: Uint8Array
  readonly file: string
  readonly env: NodeJS.ProcessEnv
  readonly running: GatehouseConfig
}

/** What came of the check. */
export type ReloadCheck =
  | {
      readonly result: 'valid'
      readonly config: GatehouseConfig
      /** Valid but risky, to be logged. */
      readonly warnings: readonly ConfigProblem[]
      /** The settings it changes that only a restart can; none when it may apply. */
      readonly restart: readonly ConfigProblem[]
    }
  /** Every problem, a restart setting the file changes among them where it can be read. */
  | { readonly result: 'invalid'; readonly problems: readonly ConfigProblem[] }

/**
 * The largest file checked on the event loop, bytes: 8 KiB, which takes at
 * most 65 ms there (a 4,000-item list; a config of routes, 12 ms), unless
 * it names another file (`NAMES_A_FILE`). A larger one is checked on a
 * thread of its own, which costs about 220 ms to start.
 */
export const INLINE_CHECK_BYTES = 8192 // 8 KiB

/** Bounds on the thread a reload is checked on. */
export interface ReloadCheckLimits {
  /** Its V8 heap, MiB: a config takes a few; 1 MiB of blank lines, the worst within the bounds of yaml-scan.ts, about 150. */
  readonly heapMb: number
  /** ms; a check takes well under a second, a file on a stalled mount forever. */
  readonly timeout: number
}

export const RELOAD_CHECK_LIMITS: ReloadCheckLimits = {
  heapMb: 256, // 256 MiB
  timeout: 30_000, // 30 s
}

/**
 * Starts the thread `input` is checked on, which posts its `ReloadCheck`
 * and ends. A seam for tests: a read of a file the config names that never
 * returns (a stalled network mount) is a fault no real file here shows,
 * as a FIFO is refused unread.
 */
export type StartCheckThread = (input: ReloadCheckInput, limits: ReloadCheckLimits) => Worker

/** The thread of reload-check-worker.ts. */
export const startCheckThread: StartCheckThread = (input, limits) =>
  new Worker(new URL(import.meta.resolve('./reload-check-worker.js')), {
    workerData: { ...input, env: { ...input.env } },
    resourceLimits: { maxOldGenerationSizeMb: limits.heapMb },
  })

/**
 * The check a reload runs on the bytes it read, as `gatehouse check` runs
 * it, with the settings they change that need a restart. One refusal
 * names everything to fix: a restart setting the bytes change is named
 * too where they can be read for it, or fixing the rest brings a second
 * refusal, for it alone.
 */
export function checkReload({ bytes, file, env, running }: ReloadCheckInput): ReloadCheck {
  let text: string
  try {
    text = configText(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), file)
  } catch (err) {
    return { result: 'invalid', problems: problemsOf(err) }
  }
  const warnings: ConfigProblem[] = []
  let config: GatehouseConfig
  try {
    config = parseConfig(text, file, env, {
      onWarning: (warning) => warnings.push(warning),
      running: true,
    })
  } catch (err) {
    const problems = problemsOf(err)
    const refused = restartNeededIn(running, text, env, problems)
    return {
      result: 'invalid',
      problems: [...problems, ...refused].sort((a, b) => (a.line ?? 0) - (b.line ?? 0)),
    }
  }
  return { result: 'valid', config, warnings, restart: restartNeededOf(running, config, text, env) }
}

/**
 * A `file:` option (`oidc.clientKey`, a `tls` certificate, key or CA):
 * what it names is read and parsed by the check too, up to 1 MiB a file.
 * A CA bundle costs about 0.2 ms a KiB to parse (Debian's 220 KiB, about
 * 50 ms), and an 8 KiB config of 40 routes that each name a 1 MiB one
 * held the event loop 2.5 s.
 */
const NAMES_A_FILE = /\bfile["']?\s*:/

/** The file is checked on a thread of its own: past `INLINE_CHECK_BYTES`, or naming another file. */
function needsThread(bytes: Uint8Array): boolean {
  return (
    bytes.byteLength > INLINE_CHECK_BYTES ||
    NAMES_A_FILE.test(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1'))
  )
}

/** A check not begun: the thread of an earlier one outlived it, and has not exited. */
export interface StillChecking {
  readonly result: 'busy'
  /** Resolves once that thread has exited. */
  readonly exited: Promise<void>
}

/**
 * A check refused for time (or stopped by the shutdown) on a thread told to
 * end: nothing says the file is at fault, as its thread may be blocked
 * reading a file the config names on a stalled network mount.
 */
export interface Overdue {
  readonly result: 'overdue'
  readonly problems: readonly ConfigProblem[]
  /** Resolves once its thread has exited. */
  readonly exited: Promise<void>
}

/**
 * `checkReload` as a reload runs it: a file of up to `INLINE_CHECK_BYTES`
 * that names no other file here, any other on a thread of its own
 * (`checkOffThread`), which `stop` ends. One such thread at a time, however
 * long one is stuck: a thread blocked in a system call (a read of a file
 * the config names, on a stalled network mount) cannot be ended, and
 * outlives its check's timeout; until it exits, a check that needs a
 * thread is not begun (`busy`), where each reload left one more thread
 * stuck, with its heap, for as long as the mount stalled. A file checked
 * on the event loop is checked meanwhile.
 */
export class ReloadChecker {
  readonly #limits: ReloadCheckLimits
  readonly #start: StartCheckThread
  /** The exit of a thread whose check did not wait for it, until it exits. */
  #overdue: Promise<void> | undefined

  constructor(limits: ReloadCheckLimits = RELOAD_CHECK_LIMITS, start: StartCheckThread = startCheckThread) {
    this.#limits = limits
    this.#start = start
  }

  check(input: ReloadCheckInput, stop?: AbortSignal): Promise<ReloadCheck | StillChecking | Overdue> {
    if (!needsThread(input.bytes)) return Promise.resolve(checkReload(input))
    if (this.#overdue !== undefined) return Promise.resolve({ result: 'busy', exited: this.#overdue })
    let outlived: Promise<void> | undefined
    return checkOffThread(input, this.#limits, stop, {
      start: this.#start,
      overdue: (exited) => {
        const out: Promise<void> = exited.then(() => {
          if (this.#overdue === out) this.#overdue = undefined
        })
        this.#overdue = outlived = out
      },
    }).then((check) =>
      // `overdue` is told in the same turn the check is refused, before this runs.
      outlived === undefined || check.result === 'valid'
        ? check
        : { result: 'overdue', problems: check.problems, exited: outlived },
    )
  }
}

/** How `checkOffThread` starts its thread, and whom it tells of one it did not wait for. */
export interface CheckThreadHooks {
  /** Default `startCheckThread`. */
  readonly start?: StartCheckThread
  /** The check was refused for time, or stopped, with the thread told to end: `exited` resolves once it has. */
  readonly overdue?: (exited: Promise<void>) => void
}

/**
 * `checkReload` on a thread of its own, so that the event loop answers
 * requests while it runs: parsing 1 MiB of YAML within the bounds of
 * yaml-scan.ts takes seconds (1 MiB of blank lines, 2.4 s). The key and
 * certificate files the config names are read there too. The thread's
 * heap and time are bounded: past either, the reload is refused and the
 * process goes on. Once `stop` aborts (the shutdown), the thread is ended
 * and the check refused at once.
 */
export function checkOffThread(
  input: ReloadCheckInput,
  limits: ReloadCheckLimits = RELOAD_CHECK_LIMITS,
  stop?: AbortSignal,
  hooks: CheckThreadHooks = {},
): Promise<ReloadCheck> {
  if (stop?.aborted) return Promise.resolve(stopped())
  return new Promise((resolve) => {
    const worker = (hooks.start ?? startCheckThread)(input, limits)
    const exited = new Promise<void>((done) => worker.once('exit', () => done()))
    let settled = false
    const settle = (check: ReloadCheck) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      stop?.removeEventListener('abort', onStop)
      void worker.terminate()
      resolve(check.result === 'valid' ? { ...check, config: deepFreeze(check.config) } : check)
    }
    const refuse = (message: string) => settle({ result: 'invalid', problems: [{ path: '', message }] })
    // Neither the time limit nor the shutdown ends a thread blocked in a
    // system call: terminate() stops JavaScript, not a read(2) of a
    // stalled mount, so the thread may stay; `settle` took both off first.
    const timer = setTimeout(() => {
      refuse(`checking the file took longer than ${limits.timeout / 1000} s; it was not applied`)
      hooks.overdue?.(exited)
    }, limits.timeout)
    // A shutdown waited out the check, seconds for 1 MiB and up to its
    // whole timeout, with nothing else left to drain.
    const onStop = () => {
      settle(stopped())
      hooks.overdue?.(exited)
    }
    stop?.addEventListener('abort', onStop, { once: true })
    worker.once('message', settle)
    worker.once('error', (err: Error & { code?: string }) =>
      refuse(
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `checking the file took more than the ${limits.heapMb} MiB of memory it may; a config takes a few`
          : `checking the file failed: ${err.message}`,
      ),
    )
    worker.once('exit', (code) => refuse(`checking the file ended without an answer (exit code ${code})`))
  })
}

/** A check the shutdown ended: nothing is wrong with the file (reload.ts does not log it as refused). */
function stopped(): ReloadCheck {
  return {
    result: 'invalid',
    problems: [{ path: '', message: 'the gateway is shutting down: the check of the file was stopped' }],
  }
}

/** What a failed read or check says is wrong with the file. */
export function problemsOf(err: unknown): readonly ConfigProblem[] {
  return err instanceof ConfigError ? err.problems : [{ path: '', message: (err as Error).message }]
}

/** As loadConfig gives it: a config that came over from the thread is a copy, not yet frozen. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}
