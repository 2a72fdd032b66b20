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
