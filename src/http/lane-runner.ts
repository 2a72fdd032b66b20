import { LaneBackoff, type LaneClock, processClock } from './lane-backoff.js'

/** What a lane's part of a pass found: its peer answered, was away, or the pass stopped (closed, out of time, between apps). */
export type Reached = 'reached' | 'away' | 'stopped'

/** What a runner's owner gives it: the lanes it holds, and what one lane's part of a pass is. */
export interface LaneWork {
  /** How soon a lane's first pass comes, ms; doubled per pass its peer is away, up to `maxDelay`. */
  readonly firstDelay: number
  readonly maxDelay: number
  /** The lanes with something owed, in the order their parts of a pass start. */
  readonly lanes: () => Iterable<string>
  /**
   * One lane's part of a pass, over what the lane holds as it is called.
   * `stop` aborts when the shutdown's last pass runs out of time: no try
   * is to start after it, and those under way are told.
   */
  readonly tryLane: (lane: string, stop: AbortSignal) => Promise<Reached>
  /** Whether a pass may be set now (the retry queue: while an app serves); default always. */
  readonly ready?: (() => boolean) | undefined
  /** Default `processClock`; a test's, in tests. */
  readonly clock?: LaneClock | undefined
}

/**
 * Runs the passes over what is owed in lanes (an IdP, an issuer, the
 * store), for the retry queue (retry-queue.ts) and the logout tokens held
 * unverified (held-logout-tokens.ts), which until 2026-12-07 each had a
 * copy of it, and drifted: one tried its lanes in turn. Each lane keeps
 * its own backoff (LaneBackoff), and one timer fires when the lane due
 * first is. The lanes due are tried alongside one another, so a peer that
 * holds a try open until its timeout holds back its own lane alone, and a
 * lane a pass is at is left out of a pass started meanwhile. A shutdown
 * makes one last pass over every lane, whatever its backoff (`lastPass`).
 */
export class LaneRunner {
  readonly #work: LaneWork
  readonly #backoff: LaneBackoff
  /**
   * Lanes whose part of a pass is under way: a pass started meanwhile
   * leaves them out, and tries the others' at once, so that a peer that
   * answers slowly with many items owed holds back no other lane.
   */
  readonly #busy = new Set<string>()
  /** Each lane's part of a pass under way, by lane: the last pass tries each again once it is done. */
  readonly #running = new Map<string, Promise<void>>()
  /** Lanes that owe nothing more, kept while a pass is at them: they are forgotten once it says what the peer did. */
  readonly #emptied = new Set<string>()
  /** Aborted when the last pass runs out of time. */
  readonly #stopping = new AbortController()
  /** The shutdown's last pass, once asked for: nothing is scheduled after it. */
  #last: Promise<void> | undefined
  #closed = false

  constructor(work: LaneWork) {
    this.#work = work
    this.#backoff = new LaneBackoff(work.firstDelay, work.maxDelay, work.clock ?? processClock)
  }

  get closed(): boolean {
    return this.#closed
  }

  /** `lane` is owed something: its first pass `firstDelay` from now, unless it is in its backoff (its peer was away). */
  owe(lane: string): void {
    if (this.#closed) return
    this.#emptied.delete(lane)
    this.#backoff.owe(lane)
    this.schedule()
  }

  /** `lane` owes nothing more: it starts afresh when next owed. A lane a pass is at keeps its backoff until the pass says what its peer did. */
  forget(lane: string): void {
    if (this.#busy.has(lane)) this.#emptied.add(lane)
    else this.#backoff.delete(lane)
  }

  /** Sets the timer for the lane due first that no pass is at, unless it is set for then or sooner. */
  schedule(): void {
    if (this.#closed || this.#last !== undefined || this.#work.ready?.() === false) return
    this.#backoff.schedule(
      (by) => void this.#pass((lane) => this.#backoff.dueBy(lane, by)),
      (lane) => !this.#busy.has(lane),
    )
  }

  /**
   * One last pass as the process shuts down: every lane is tried now,
   * whatever its backoff, as its peer may have come back since it was
   * last found away; a lane a pass is at, once that pass is done, as its
   * try may have been sent before the peer came back. Nothing is
   * scheduled after it. Ends when they are done or `stop` aborts,
   * whichever comes first: then the lanes' `stop` aborts too. Once,
   * however many ask.
   */
  lastPass(stop: AbortSignal): Promise<void> {
    this.#last ??= this.#finish(stop)
    return this.#last
  }

  async #finish(stop: AbortSignal): Promise<void> {
    this.#backoff.stop()
    const stopped = new Promise<void>((resolve) => {
      const end = () => {
        this.#stopping.abort()
        resolve()
      }
      if (stop.aborted) end()
      else stop.addEventListener('abort', end, { once: true })
    })
    const again = [...this.#running].map(([under, run]) =>
      run.then(() => this.#pass((lane) => lane === under)),
    )
    await Promise.race([Promise.all([...again, this.#pass(() => true)]), stopped])
  }

  /** Stops passing, and forgets every lane. */
  close(): void {
    this.#closed = true
    this.#backoff.stop(true)
    this.#emptied.clear()
  }

  /**
   * One pass over the lanes `due` picks that no other pass is at (on the
   * timer, those due by when it was set for, as a timer may fire a
   * millisecond before the clock says so), alongside one another. A lane
   * done sets its own backoff and the timer for the next lane due, without
   * waiting for the pass's other lanes.
   */
  #pass(due: (lane: string) => boolean): Promise<void> {
    const lanes = [...this.#work.lanes()].filter((lane) => !this.#busy.has(lane) && due(lane))
    for (const lane of lanes) this.#busy.add(lane)
    // For the lanes not due yet, or due while this pass is at its own.
    this.schedule()
    const runs = lanes.map((lane) => {
      const run: Promise<void> = this.#run(lane).finally(() => {
        if (this.#running.get(lane) === run) this.#running.delete(lane)
      })
      this.#running.set(lane, run)
      return run
    })
    return Promise.all(runs).then(() => {})
  }

  async #run(lane: string): Promise<void> {
    let reached: Reached = 'stopped'
    try {
      reached = await this.#work.tryLane(lane, this.#stopping.signal)
    } finally {
      this.#busy.delete(lane)
      if (this.#emptied.delete(lane)) this.#backoff.delete(lane)
      // Closed, or between apps: the next app's serve() tries it as it was due.
      else if (reached !== 'stopped') this.#backoff.passed(lane, reached === 'away')
      this.schedule()
    }
  }
}
