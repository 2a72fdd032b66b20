import { performance } from 'node:perf_hooks'

interface Backoff {
  /** The wait before the lane's next pass, ms. */
  delay: number
  /** When its next pass is due, on the clock. */
  due: number
}

/** The time and the timer a backoff runs on: the process's (`processClock`), or a test's. */
export interface LaneClock {
  /** Monotonic ms. */
  now(): number
  /** Calls `fire` in `ms`, without holding the process open; returns what cancels it. */
  after(ms: number, fire: () => void): () => void
}

/**
 * `performance.now`, and a timer unref'd: what is owed must not hold a
 * closing process open; its owner says what it drops.
 */
export const processClock: LaneClock = {
  now: () => performance.now(),
  after: (ms, fire) => {
    const timer = setTimeout(fire, ms).unref()
    return () => clearTimeout(timer)
  },
}

/**
 * A backoff for each lane (an IdP, an issuer) with something owed, and one
 * timer for the lane due first: its first pass `firstDelay` after it is
 * first owed something, doubling to `maxDelay` per pass that found its
 * peer away, back to `firstDelay` once the peer answers. One peer away
 * delays no other peer's first try: until 2026-12-07 the retry queue, and
 * the logout tokens held unverified, shared one delay, so one IdP away
 * made another's newly owed item wait for its next try.
 */
export class LaneBackoff {
  readonly #first: number
  readonly #max: number
  readonly #clock: LaneClock
  readonly #lanes = new Map<string, Backoff>()
  /** Cancels the timer set, if one is. */
  #timer: (() => void) | undefined
  /** When `#timer` fires, on the clock. */
  #timerDue = 0

  constructor(firstDelay: number, maxDelay: number, clock: LaneClock = processClock) {
    this.#first = firstDelay
    this.#max = maxDelay
    this.#clock = clock
  }

  /** `lane` is owed something: due `firstDelay` from now, unless it is in its backoff already (its peer was away). */
  owe(lane: string): void {
    if (!this.#lanes.has(lane))
      this.#lanes.set(lane, { delay: this.#first, due: this.#clock.now() + this.#first })
  }

  /** A pass at `lane` is done: its peer was `away` (the delay doubles) or answered (back to the first). */
  passed(lane: string, away: boolean): void {
    const backoff = this.#lanes.get(lane)
    if (backoff === undefined) return
    backoff.delay = away ? Math.min(backoff.delay * 2, this.#max) : this.#first
    backoff.due = this.#clock.now() + backoff.delay
  }

  /** Whether `lane` is due by `by`, on the clock. */
  dueBy(lane: string, by: number): boolean {
    const backoff = this.#lanes.get(lane)
    return backoff !== undefined && backoff.due <= by
  }

  /** `lane` owes nothing more: it starts afresh next time. */
  delete(lane: string): void {
    this.#lanes.delete(lane)
  }

  /**
   * Sets the timer for the lane due first of those `pick` takes, unless
   * it is set for then or sooner; it calls `fire` with the time it was set
   * for, or now if later, as a timer may fire a millisecond before the
   * clock says so (what is due by then is due).
   */
  schedule(fire: (by: number) => void, pick: (lane: string) => boolean = () => true): void {
    let due = Number.POSITIVE_INFINITY
    for (const [lane, backoff] of this.#lanes) if (backoff.due < due && pick(lane)) due = backoff.due
    if (due === Number.POSITIVE_INFINITY) return
    if (this.#timer !== undefined) {
      if (this.#timerDue <= due) return
      this.#timer()
    }
    this.#timerDue = due
    this.#timer = this.#clock.after(Math.max(0, due - this.#clock.now()), () => {
      this.#timer = undefined
      fire(Math.max(due, this.#clock.now()))
    })
  }

  /** Clears the timer; `clear` forgets every lane too. */
  stop(clear = false): void {
    this.#timer?.()
    this.#timer = undefined
    if (clear) this.#lanes.clear()
  }
}
