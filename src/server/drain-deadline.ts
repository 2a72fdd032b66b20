import { performance } from 'node:perf_hooks'

/** The most a drain keeps back to finish closing once the sockets are dropped. */
const LAST_STRETCH = 1_000 // ms

/**
 * When a shutdown's drain runs out, once a signal has started one. A
 * WebSocket whose peer never completes the closing handshake (one that
 * keeps sending but reads nothing, or a wss:// upstream that stops
 * reading) is bounded only by `ws`'s close timer, a minute by default:
 * past the drain, the process was cut off with exit 1, as if a request had
 * been. What is still closing is dropped a little before the drain ends
 * instead (a quarter of it, at most a second), so the rest of the shutdown
 * finishes in time; a request in flight still holds the drain to its end.
 */
export class DrainDeadline {
  readonly #waiting = new Set<() => void>()
  #timer: NodeJS.Timeout | undefined
  #over = false

  /** The drain has begun, and ends `ms` from now. Once: a second signal exits at once anyway. */
  start(ms: number): void {
    if (this.#timer !== undefined || this.#over) return
    const at = performance.now() + ms - Math.min(LAST_STRETCH, ms / 4)
    this.#timer = setTimeout(() => this.#end(), Math.max(0, at - performance.now()))
    this.#timer.unref()
  }

  /**
   * Calls `drop` when the drain is nearly out: at once if it already is,
   * never if no drain starts (a test's or an embedder's `close()`, which
   * waits for the sockets as long as they take). Returns what cancels it.
   */
  onEnd(drop: () => void): () => void {
    if (this.#over) {
      drop()
      return () => {}
    }
    this.#waiting.add(drop)
    return () => this.#waiting.delete(drop)
  }

  #end(): void {
    this.#over = true
    for (const drop of this.#waiting) drop()
    this.#waiting.clear()
  }
}
