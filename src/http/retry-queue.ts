import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger } from 'fastify'
import type { LogCode } from '../errors.js'
import { LaneBackoff } from './lane-backoff.js'

/**
 * What one try of an owed item came to: carried out (`done`), to be
 * looked at again next pass (`again`), not answered by the peer it needs
 * (`outage`: the rest of its lane waits for the next pass), or given up
 * for `lost`, the reason logged.
 */
export type Tried = 'done' | 'again' | 'outage' | { readonly lost: string }

/** A log line of a queue: its catalogue code and message. */
export interface Said {
  readonly code: LogCode
  readonly msg: string
}

/** Most items owed at once, over every owner, unless told: each holds what it owes in memory. */
const DEFAULT_MAX = 10_000

/** What the process gives a queue: its log, and, in tests, a bound and a clock. */
export interface OwedOptions {
  readonly log: FastifyBaseLogger
  /** Most items owed at once, over every owner; default 10,000. */
  readonly max?: number | undefined
  /** Monotonic ms; default `performance.now`. */
  readonly clock?: (() => number) | undefined
}

/** What a kind of owed item is to the queue: how it is tried, whose it is, and what is said of it. */
export interface RetryPolicy<T, A> {
  /**
   * How soon a lane's first pass comes after an item is owed to it, ms;
   * doubled, up to `maxDelay`, per pass of the lane that found its peer
   * away, and back to this once its peer answers.
   */
  readonly firstDelay: number
  readonly maxDelay: number
  /** The IdP an item is of, for its log lines. */
  readonly idpOf: (what: T) => string
  /** Whose an item is: when the bound is reached, the owner holding the most gives one up. */
  readonly ownerOf: (what: T) => string
  /**
   * The items of one lane are tried in turn, oldest first, and an outage
   * ends the lane's pass, as its others would fail alike; lanes are tried
   * alongside one another, so one whose peer holds a try open until its
   * timeout holds only its own.
   */
  readonly laneOf: (what: T) => string
  /**
   * One try of `what` with the newest serving app's attempt; logs a
   * success itself, on `log`. `stop` aborts when the shutdown's last pass
   * runs out of time (`lastPass`).
   */
  readonly tryOne: (what: T, attempt: A, log: FastifyBaseLogger, stop: AbortSignal) => Promise<Tried>
  readonly owed: Said
  readonly lost: Said
}

/** What a lane's part of a pass found: its peer answered, was away, or the pass stopped (closed, between apps). */
type Reached = 'reached' | 'away' | 'stopped'

interface Entry<T> {
  readonly key: unknown
  readonly owner: string
  readonly what: T
  /** Given up past this, on the monotonic clock. */
  readonly until: number
}

/**
 * Items a peer did not answer for, held in memory and tried again, each
 * for its own budget, at most `max` at once. Each lane keeps its own
 * backoff (its first pass `firstDelay` after, doubling to `maxDelay`
 * while its peer stays away, back to `firstDelay` once it answers), and
 * one unref'd timer fires when the lane due first is. A shutdown makes
 * one last pass over every lane (`lastPass`); closing drops what is still
 * owed, and says so.
 *
 * What is owed is data (`T`), carried out by the attempt (`A`) of the app
 * that serves now (`serve`), so the app a config reload builds takes over
 * what the replaced one owed.
 */
export class RetryQueue<T, A> {
  readonly #policy: RetryPolicy<T, A>
  readonly #log: FastifyBaseLogger
  readonly #max: number
  readonly #clock: () => number
  /** In the order owed, by key: a key owed already is owed once. */
  readonly #owed = new Map<unknown, Entry<T>>()
  /** The same entries by owner, each in the order owed. */
  readonly #byOwner = new Map<string, Set<Entry<T>>>()
  /** Entries whose try is awaited: never the one given up for the bound, whose try may yet carry it out. */
  readonly #trying = new Set<Entry<T>>()
  /**
   * The attempts of the apps serving, oldest first: the newest carries
   * out what is owed. An app a failed reload built and closed takes its
   * own out, and the one still serving carries on.
   */
  readonly #serving = new Set<{ readonly attempt: A }>()
  /**
   * Lanes whose part of a pass is under way: a pass started meanwhile
   * leaves them out, and tries the others' at once, so that a peer that
   * answers slowly with many items owed holds back no other lane.
   */
  readonly #busy = new Set<string>()
  /** How many items each lane with something owed holds (0 while a pass at it that carried out its last is under way). */
  readonly #lanes = new Map<string, number>()
  /**
   * The backoff of each lane with something owed. Until 2026-12-07 one
   * delay was shared by every lane: one IdP down doubled it to 30 s, and
   * a revocation owed to another then waited up to 30 s for its first
   * try, not its own 1 s.
   */
  readonly #backoff: LaneBackoff
  /** Each lane's part of a pass under way, by lane: the last pass tries each again once it is done. */
  readonly #running = new Map<string, Promise<void>>()
  /** Aborted when the last pass runs out of time: no try starts after it, and those under way are told. */
  readonly #stopping = new AbortController()
  /** The shutdown's last pass, once asked for: nothing is scheduled after it. */
  #last: Promise<void> | undefined
  #closed = false

  constructor(policy: RetryPolicy<T, A>, options: OwedOptions) {
    this.#policy = policy
    this.#log = options.log
    this.#max = options.max ?? DEFAULT_MAX
    this.#clock = options.clock ?? (() => performance.now())
    this.#backoff = new LaneBackoff(policy.firstDelay, policy.maxDelay)
  }

  get size(): number {
    return this.#owed.size
  }

  /**
   * Carries out what is owed with `attempt` from now on, until the
   * returned function is called (by the app that served it, as it
   * closes) or a later `serve` takes over.
   */
  serve(attempt: A): () => void {
    const serving = { attempt }
    this.#serving.add(serving)
    if (this.#owed.size > 0) this.#schedule()
    return () => void this.#serving.delete(serving)
  }

  /**
   * Owes `what` for `budgetMs`, said on `log` (the request's), unless
   * `key` is owed already. When the bound is reached, the owner that
   * holds the most (counting `what`; `what`'s own on a tie) gives up its
   * oldest, `what` itself if it has no other: one IdP that stays away
   * cannot fill the bound and have another's items refused.
   */
  add(what: T, budgetMs: number, log: FastifyBaseLogger, key: unknown = {}): void {
    if (this.#closed || this.#owed.has(key)) return
    const owner = this.#policy.ownerOf(what)
    if (this.#owed.size >= this.#max) {
      const given = this.#givenUpFor(owner)
      this.#lost(log, given?.what ?? what, 'full', { owed: this.#owed.size })
      if (given === undefined) return
      this.#remove(given)
    }
    const entry: Entry<T> = { key, owner, what, until: this.#clock() + budgetMs }
    this.#owed.set(key, entry)
    const ofOwner = this.#byOwner.get(owner)
    if (ofOwner) ofOwner.add(entry)
    else this.#byOwner.set(owner, new Set([entry]))
    const name = this.#policy.laneOf(what)
    this.#lanes.set(name, (this.#lanes.get(name) ?? 0) + 1)
    // A lane in its backoff keeps it: its peer was away at its last pass.
    this.#backoff.owe(name)
    const { code, msg } = this.#policy.owed
    log.warn({ code, idp: this.#policy.idpOf(what) }, msg)
    this.#schedule()
  }

  /**
   * One last pass as the process shuts down: every lane is tried now,
   * whatever its backoff, as its peer may have come back since it was
   * last found away; a lane a pass is at, once that pass is done, as its
   * try may have been sent before the peer came back. Nothing is
   * scheduled after it. Ends when they are done or `stop` aborts,
   * whichever comes first: no try starts after that, and the tries under
   * way are aborted. Once, however many ask.
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
      run.then(() => this.#pass((name) => name === under)),
    )
    await Promise.race([Promise.all([...again, this.#pass(() => true)]), stopped])
  }

  /** Stops trying; what is still owed is dropped, and said to be. */
  close(): void {
    this.#closed = true
    this.#backoff.stop(true)
    if (this.#owed.size > 0) {
      const { code, msg } = this.#policy.lost
      this.#log.error({ code, reason: 'closed', owed: this.#owed.size }, msg)
    }
    this.#owed.clear()
    this.#byOwner.clear()
    this.#lanes.clear()
  }

  /** The oldest entry, not being tried, of the owner that holds the most; a tie goes against `owner`. */
  #givenUpFor(owner: string): Entry<T> | undefined {
    let most = owner
    let held = (this.#byOwner.get(owner)?.size ?? 0) + 1
    for (const [other, entries] of this.#byOwner) {
      if (entries.size > held) {
        most = other
        held = entries.size
      }
    }
    for (const entry of this.#byOwner.get(most) ?? []) if (!this.#trying.has(entry)) return entry
    return undefined
  }

  #remove(entry: Entry<T>): void {
    if (this.#owed.get(entry.key) !== entry) return
    this.#owed.delete(entry.key)
    const ofOwner = this.#byOwner.get(entry.owner)!
    ofOwner.delete(entry)
    if (ofOwner.size === 0) this.#byOwner.delete(entry.owner)
    const name = this.#policy.laneOf(entry.what)
    const left = this.#lanes.get(name)! - 1
    // A lane a pass is at keeps its backoff until the pass says what its peer did.
    if (left > 0 || this.#busy.has(name)) this.#lanes.set(name, left)
    else this.#forget(name)
  }

  #forget(lane: string): void {
    this.#lanes.delete(lane)
    this.#backoff.delete(lane)
  }

  #lost(log: FastifyBaseLogger, what: T, reason: string, fields: { owed?: number } = {}): void {
    const { code, msg } = this.#policy.lost
    log.error({ code, idp: this.#policy.idpOf(what), reason, ...fields }, msg)
  }

  /** Sets the timer for the lane due first that no pass is at, unless it is set for then or sooner. */
  #schedule(): void {
    if (this.#closed || this.#last !== undefined || this.#serving.size === 0) return
    this.#backoff.schedule(
      (by) => void this.#pass((name) => this.#backoff.dueBy(name, by)),
      (name) => !this.#busy.has(name),
    )
  }

  /**
   * One pass over what is owed in the lanes `due` picks that no other pass
   * is at (on the timer, those due by when it was set for, as a timer may
   * fire a millisecond before the clock says so): each lane in turn, the
   * lanes alongside one another. A lane done sets its own backoff and the
   * timer for the next lane due, without waiting for the pass's other lanes.
   */
  #pass(due: (name: string) => boolean): Promise<void> {
    const lanes = new Map<string, Entry<T>[]>()
    for (const entry of this.#owed.values()) {
      const name = this.#policy.laneOf(entry.what)
      if (this.#busy.has(name) || !due(name)) continue
      const queue = lanes.get(name)
      if (queue) queue.push(entry)
      else lanes.set(name, [entry])
    }
    for (const name of lanes.keys()) this.#busy.add(name)
    // For the lanes not due yet, or due while this pass is at its own.
    this.#schedule()
    const runs = [...lanes].map(([name, entries]) => {
      const run: Promise<void> = this.#runLane(name, entries).finally(() => {
        if (this.#running.get(name) === run) this.#running.delete(name)
      })
      this.#running.set(name, run)
      return run
    })
    return Promise.all(runs).then(() => {})
  }

  async #runLane(name: string, entries: readonly Entry<T>[]): Promise<void> {
    let reached: Reached = 'stopped'
    try {
      reached = await this.#tryLane(entries)
    } finally {
      this.#busy.delete(name)
      this.#backOff(name, reached)
      this.#schedule()
    }
  }

  /** A lane's backoff once a pass is done with it, by what its peer did. */
  #backOff(name: string, reached: Reached): void {
    const owed = this.#lanes.get(name)
    if (owed === undefined) return
    if (owed === 0) {
      this.#forget(name)
      return
    }
    // Closed, or between apps: the next app's serve() tries it as it was due.
    if (reached === 'stopped') return
    this.#backoff.passed(name, reached === 'away')
  }

  /** One lane's part of a pass, oldest first: whether its peer answered, was away, or the pass was stopped. */
  async #tryLane(lane: readonly Entry<T>[]): Promise<Reached> {
    for (const entry of lane) {
      // Closed, out of time, or between apps: the next app's serve() starts a pass.
      const serving = [...this.#serving].at(-1)
      if (this.#closed || this.#stopping.signal.aborted || serving === undefined) return 'stopped'
      // Given up for the bound while the lane's earlier ones were tried.
      if (this.#owed.get(entry.key) !== entry) continue
      if (this.#clock() >= entry.until) {
        this.#remove(entry)
        this.#lost(this.#log, entry.what, 'expired')
        continue
      }
      this.#trying.add(entry)
      let tried: Tried
      try {
        tried = await this.#policy.tryOne(entry.what, serving.attempt, this.#log, this.#stopping.signal)
      } finally {
        this.#trying.delete(entry)
      }
      if (this.#closed) return 'stopped'
      if (tried === 'outage') return 'away'
      if (tried === 'again') continue
      this.#remove(entry)
      if (tried !== 'done') this.#lost(this.#log, entry.what, tried.lost)
    }
    return 'reached'
  }
}
