import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger } from 'fastify'
import type { LogCode } from '../errors.js'
import { LaneRunner, type Reached } from './lane-runner.js'

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

interface Entry<T> {
  readonly key: unknown
  readonly owner: string
  readonly lane: string
  readonly what: T
  /** Given up past this, on the monotonic clock. */
  readonly until: number
}

function addTo<V>(sets: Map<string, Set<V>>, key: string, value: V): void {
  const set = sets.get(key)
  if (set) set.add(value)
  else sets.set(key, new Set([value]))
}

/** Whether taking `value` out left `key` with none. */
function removeFrom<V>(sets: Map<string, Set<V>>, key: string, value: V): boolean {
  const set = sets.get(key)
  set?.delete(value)
  if (set?.size !== 0) return false
  sets.delete(key)
  return true
}

/**
 * Items a peer did not answer for, held in memory and tried again, each
 * for its own budget, at most `max` at once. The passes over its lanes
 * are a LaneRunner's (lane-runner.ts): each lane keeps its own backoff (its
 * first pass `firstDelay` after, doubling to `maxDelay` while its peer
 * stays away, back to `firstDelay` once it answers), and one unref'd
 * timer fires when the lane due first is. A shutdown makes one last pass
 * over every lane (`lastPass`); closing drops what is still owed, and
 * says so.
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
  /** The same entries by lane, each in the order owed. */
  readonly #byLane = new Map<string, Set<Entry<T>>>()
  /**
   * The passes over the lanes, each on a backoff of its own. Until
   * 2026-12-07 one delay was shared by every lane: one IdP down doubled
   * it to 30 s, and a revocation owed to another then waited up to 30 s
   * for its first try, not its own 1 s.
   */
  readonly #runner: LaneRunner

  constructor(policy: RetryPolicy<T, A>, options: OwedOptions) {
    this.#policy = policy
    this.#log = options.log
    this.#max = options.max ?? DEFAULT_MAX
    this.#clock = options.clock ?? (() => performance.now())
    this.#runner = new LaneRunner({
      firstDelay: policy.firstDelay,
      maxDelay: policy.maxDelay,
      lanes: () => this.#byLane.keys(),
      tryLane: (lane, stop) => this.#tryLane(lane, stop),
      ready: () => this.#serving.size > 0,
    })
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
    if (this.#owed.size > 0) this.#runner.schedule()
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
    if (this.#runner.closed || this.#owed.has(key)) return
    const owner = this.#policy.ownerOf(what)
    if (this.#owed.size >= this.#max) {
      const given = this.#givenUpFor(owner)
      this.#lost(log, given?.what ?? what, 'full', { owed: this.#owed.size })
      if (given === undefined) return
      this.#remove(given)
    }
    const lane = this.#policy.laneOf(what)
    const entry: Entry<T> = { key, owner, lane, what, until: this.#clock() + budgetMs }
    this.#owed.set(key, entry)
    addTo(this.#byOwner, owner, entry)
    addTo(this.#byLane, lane, entry)
    const { code, msg } = this.#policy.owed
    log.warn({ code, idp: this.#policy.idpOf(what) }, msg)
    // A lane in its backoff keeps it: its peer was away at its last pass.
    this.#runner.owe(lane)
  }

  /**
   * One last pass as the process shuts down, over every lane whatever its
   * backoff (LaneRunner `lastPass`). Ends when it is done or `stop`
   * aborts, whichever comes first: no try starts after that, and the
   * tries under way are aborted. Once, however many ask.
   */
  lastPass(stop: AbortSignal): Promise<void> {
    return this.#runner.lastPass(stop)
  }

  /** Stops trying; what is still owed is dropped, and said to be. */
  close(): void {
    this.#runner.close()
    if (this.#owed.size > 0) {
      const { code, msg } = this.#policy.lost
      this.#log.error({ code, reason: 'closed', owed: this.#owed.size }, msg)
    }
    this.#owed.clear()
    this.#byOwner.clear()
    this.#byLane.clear()
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
    removeFrom(this.#byOwner, entry.owner, entry)
    if (removeFrom(this.#byLane, entry.lane, entry)) this.#runner.forget(entry.lane)
  }

  #lost(log: FastifyBaseLogger, what: T, reason: string, fields: { owed?: number } = {}): void {
    const { code, msg } = this.#policy.lost
    log.error({ code, idp: this.#policy.idpOf(what), reason, ...fields }, msg)
  }

  /**
   * One lane's part of a pass, over what it holds now, oldest first:
   * whether its peer answered, was away, or the pass was stopped.
   */
  async #tryLane(name: string, stop: AbortSignal): Promise<Reached> {
    for (const entry of [...(this.#byLane.get(name) ?? [])]) {
      // Closed, out of time, or between apps: the next app's serve() starts a pass.
      const serving = [...this.#serving].at(-1)
      if (this.#runner.closed || stop.aborted || serving === undefined) return 'stopped'
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
        tried = await this.#policy.tryOne(entry.what, serving.attempt, this.#log, stop)
      } finally {
        this.#trying.delete(entry)
      }
      if (this.#runner.closed) return 'stopped'
      if (tried === 'outage') return 'away'
      if (tried === 'again') continue
      this.#remove(entry)
      if (tried !== 'done') this.#lost(this.#log, entry.what, tried.lost)
    }
    return 'reached'
  }
}
