import { performance } from 'node:perf_hooks'

interface Backoff {
  /** The wait before the lane's next pass, ms. */
  delay: number
  /** When its next pass is due, on `performance.now`. */
  due: number
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
  readonly #lanes = new Map<string, Backoff>()
  #timer: NodeJS.Timeout | undefined
  /** When `#timer` fires, on `performance.now`. */
  #timerDue = 0

  constructor(firstDelay: number, maxDelay: number) {
    this.#first = firstDelay
    this.#max = maxDelay
  }

  /** `lane` is owed something: due `firstDelay` from now, unless it is in its backoff already (its peer was away). */
  owe(lane: string): void {
    if (!this.#lanes.has(lane))
      this.#lanes.set(lane, { delay: this.#first, due: performance.now() + this.#first })
  }

  /** A pass at `lane` is done: its peer was `away` (the delay doubles) or answered (back to the first). */
  passed(lane: string, away: boolean): void {
    const backoff = this.#lanes.get(lane)
    if (backoff === undefined) return
    backoff.delay = away ? Math.min(backoff.delay * 2, this.#max) : this.#first
    backoff.due = performance.now() + backoff.delay
  }

  /** Whether `lane` is due by `by`, on `performance.now`. */
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
   * clock says so (what is due by then is due). Unref'd: what is owed must
   * not hold a closing process open; its owner says what it drops.
   */
  schedule(fire: (by: number) => void, pick: (lane: string) => boolean = () => true): void {
    let due = Number.POSITIVE_INFINITY
    for (const [lane, backoff] of this.#lanes) if (backoff.due < due && pick(lane)) due = backoff.due
    if (due === Number.POSITIVE_INFINITY) return
    if (this.#timer !== undefined) {
      if (this.#timerDue <= due) return
      clearTimeout(this.#timer)
    }
    this.#timerDue = due
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined
        fire(Math.max(due, performance.now()))
      },
      Math.max(0, due - performance.now()),
    ).unref()
  }

  /** Clears the timer; `clear` forgets every lane too. */
  stop(clear = false): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (clear) this.#lanes.clear()
  }
}
