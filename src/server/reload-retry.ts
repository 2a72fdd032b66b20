import type { FastifyBaseLogger } from 'fastify'
import type { LogCode } from '../errors.js'
import type { ReloadTrigger } from './reload-outcomes.js'

/**
 * How a reload refused for a reason not in the file (its IdP could not be
 * discovered, its app failed to build) is tried again: the same bytes may
 * well apply a moment later, and nothing else would read them again.
 */
export interface ReloadRetry {
  /** Retries after the first refusal; 0 turns them off. */
  readonly attempts: number
  /** Before the first retry, ms; each next one waits twice as long, up to `maxDelay`. */
  readonly delay: number
  /** ms. */
  readonly maxDelay: number
}

/** 5, 10, 20, 40 and 60 s: about two and a half minutes for the IdP to come back. */
export const DEFAULT_RELOAD_RETRY: ReloadRetry = {
  attempts: 5,
  delay: 5_000, // 5 s
  maxDelay: 60_000, // 1 min
}

/** The wait before retry `n` (from 1), ms. */
export function retryDelay(retry: ReloadRetry, n: number): number {
  return Math.min(retry.delay * 2 ** (n - 1), retry.maxDelay)
}

/**
 * The one retry a reloader has waiting, if any: after its backoff (`after`),
 * or once a stuck check thread has exited, and no sooner than its backoff
 * (`afterExit`). A newer reload reads the file as it is then, so it drops
 * the retry waiting (`drop`), however it waits: until 2026-12-07 one
 * waiting for a thread was not dropped, and read the file again after a
 * newer reload had applied it, starting a round of retries of its own.
 */
export class PendingRetry {
  /** Runs retry `n`, or a read once the thread exits that is no retry (a deferred reload's, `n` undefined). */
  readonly #run: (n: number | undefined) => void
  #timer: NodeJS.Timeout | undefined
  /** What runs once the thread exits: retry `n` no sooner than `due` (`performance.now()`), or at once. */
  #onExit: { readonly n: number | undefined; readonly due: number } | undefined
  /** The exit of the thread waited for, until it exits: one wait however many reloads ask. */
  #awaiting: Promise<void> | undefined

  constructor(run: (n: number | undefined) => void) {
    this.#run = run
  }

  /** Whether a retry is waiting, on a timer or on a thread. */
  get pending(): boolean {
    return this.#timer !== undefined || this.#onExit !== undefined
  }

  /** Retry `n` in `delay` ms. */
  after(delay: number, n: number): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#run(n)
    }, delay)
    this.#timer.unref()
  }

  /**
   * Retry `n` once `exited` resolves and `delay` ms have passed, whichever
   * is later: a thread blocked on a stalled mount exits when the mount
   * answers, minutes on, and is read again at once; one whose parse took
   * the time exits when told, and would take it again at once. Without
   * `n`, the file is read once the thread exits (a deferred reload).
   */
  afterExit(exited: Promise<void>, n?: number, delay = 0): void {
    this.#onExit = { n, due: performance.now() + delay }
    if (this.#awaiting !== undefined) return
    this.#awaiting = exited.then(() => {
      this.#awaiting = undefined
      const wanted = this.#onExit
      this.#onExit = undefined
      if (wanted === undefined) return
      const wait = wanted.due - performance.now()
      if (wait <= 0 || wanted.n === undefined) this.#run(wanted.n)
      else this.after(wait, wanted.n)
    })
  }

  /** Drops the retry waiting, if any; says whether there was one. */
  drop(): boolean {
    const was = this.pending
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#onExit = undefined
    return was
  }
}

/** What a reloader's retries ask of it. */
export interface RetryHooks {
  /** Runs the retry: a reload as `retry`. */
  readonly run: () => void
  /** The reloader is closed: no retry runs, nor is one scheduled. */
  readonly closed: () => boolean
  /** A reload is queued behind the one in progress, which reads the file anyway. */
  readonly queued: () => boolean
}

/**
 * A reloader's retries of the reloads refused for a reason not in the
 * file: how many are used, bounded by `ReloadRetry.attempts` until a
 * reload something other than a retry set off, the one waiting
 * (`PendingRetry`), and what each logs.
 */
export class ReloadRetries {
  readonly #retry: ReloadRetry
  readonly #file: string
  readonly #log: FastifyBaseLogger
  readonly #hooks: RetryHooks
  /** The retry waiting, on its backoff or for a stuck check thread to exit; a newer reload drops it. */
  readonly #pending: PendingRetry
  /** Retries used since the last reload something other than a retry set off. */
  #used = 0

  constructor(
    retry: ReloadRetry = DEFAULT_RELOAD_RETRY,
    file: string,
    log: FastifyBaseLogger,
    hooks: RetryHooks,
  ) {
    this.#retry = retry
    this.#file = file
    this.#log = log
    this.#hooks = hooks
    this.#pending = new PendingRetry((n) => {
      if (hooks.closed()) return
      if (n !== undefined) {
        const { attempts } = retry
        log.info({ file, retry: n, of: attempts }, `config reload: retry ${n} of ${attempts}`)
      }
      hooks.run()
    })
  }

  /** The shutdown: the retry waiting is dropped. */
  close(): void {
    this.#pending.drop()
  }

  /**
   * A newer reload reads the file as it is now: the retries of an older one
   * end, one waiting for a stuck check thread too (if this reload is
   * deferred in turn, it waits for that thread itself).
   */
  drop(trigger: ReloadTrigger): void {
    if (this.#pending.drop()) {
      this.#log.info(
        { file: this.#file, trigger },
        'config reload: the pending retry is dropped; a newer reload reads the file now',
      )
    }
    this.#used = 0
  }

  /** After a refusal that was not the file's fault: the next retry, after its backoff, or the end of them. */
  later(reason: string): void {
    const due = this.#next(reason)
    if (due === undefined) return
    this.#scheduled(reason, due, `in ${due.delay} ms`)
    this.#pending.after(due.delay, due.n)
  }

  /**
   * After a check refused for time, on a thread told to end: the next
   * retry, once that thread has exited, as nothing else would read the
   * file again (the watch reports an edit once); until 2026-12-07 only if
   * a reload had been deferred meanwhile. A check whose parse took the time
   * ends when told, and would take it again: these retries are counted
   * against the same bound as the others (`ReloadRetry.attempts`), and
   * wait out the same backoff, from the refusal, if the thread exits
   * sooner (until 2026-12-07 they ran as soon as it did, one check thread
   * after another).
   */
  afterExit(reason: string, exited: Promise<void>): void {
    const due = this.#next(reason)
    if (due === undefined) return
    this.#scheduled(
      reason,
      due,
      `once the thread that checked it has exited, and in ${due.delay} ms at the soonest`,
    )
    this.#pending.afterExit(exited, due.n, due.delay)
  }

  /** A deferred reload's read, once the stuck check thread exits: no retry, so not counted. */
  readAfterExit(exited: Promise<void>): void {
    this.#pending.afterExit(exited)
  }

  /**
   * After a refusal that was not the file's fault: the number of the next
   * retry and its backoff, or none (the end of them, logged, or a reload
   * queued behind this one, which reads the file anyway).
   */
  #next(reason: string): { readonly n: number; readonly delay: number } | undefined {
    if (this.#hooks.closed() || this.#hooks.queued()) return undefined
    const file = this.#file
    const code: LogCode = 'GATEHOUSE_CONFIG_RELOAD_RETRY'
    const { attempts } = this.#retry
    if (this.#used >= attempts) {
      if (attempts > 0)
        this.#log.warn(
          { code, file, retries: attempts, gaveUp: true, reason },
          `config reload: gave up after ${attempts} retries; the running config is kept. Once the cause is fixed, send SIGHUP or update ${file}`,
        )
      return undefined
    }
    const n = ++this.#used
    return { n, delay: retryDelay(this.#retry, n) }
  }

  #scheduled(
    reason: string,
    { n, delay }: { readonly n: number; readonly delay: number },
    when: string,
  ): void {
    const file = this.#file
    const code: LogCode = 'GATEHOUSE_CONFIG_RELOAD_RETRY'
    const { attempts } = this.#retry
    this.#log.warn(
      { code, file, retry: n, of: attempts, retryInMs: delay, reason },
      `config reload: refused for a reason not in ${file}; retry ${n} of ${attempts} ${when}`,
    )
  }
}
