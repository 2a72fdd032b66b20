import { BoundedMap } from './bounded-map.js'

/** How often a line a peer can repeat at will is written, per key. */
export const REPEATED_LINE_INTERVAL = 60_000 // 1 min

/** Keys remembered at once: more than the reasons any one line has. */
const KEYS_MAX = 256

interface Held {
  /** When the next line for the key may be written, on `now`'s clock. */
  readonly until: number
  /** Lines not written since the last one that was. */
  repeated: number
}

/**
 * Lines that anyone who can reach the gateway can make it write once per
 * request (a junk logout token, a sign-in past its rate limit): the first
 * for a key is written, the others within `interval` only counted, and the
 * next one written says how many there were (`repeated`). The store-down
 * line is kept to one per outage for the same reason: without a bound, a
 * client at line rate fills the disk and buries the lines that matter.
 * Keys are ours (a code, a reason in our words), never a peer's text;
 * should they be many, the least recent is forgotten (its count with it).
 */
export class RepeatedLines {
  readonly #interval: number
  readonly #now: () => number
  readonly #held = new BoundedMap<string, Held>(KEYS_MAX)

  constructor(interval: number = REPEATED_LINE_INTERVAL, now: () => number = Date.now) {
    this.#interval = interval
    this.#now = now
  }

  /**
   * Whether a line for `key` is to be written now: `undefined` if not (it
   * is counted), else how many were not written since the last one.
   */
  admit(key: string): number | undefined {
    const now = this.#now()
    const held = this.#held.use(key)
    if (held && now < held.until) {
      held.repeated++
      return undefined
    }
    this.#held.set(key, { until: now + this.#interval, repeated: 0 })
    return held?.repeated ?? 0
  }
}

/** The field a written line carries when others were not written: none when there were none. */
export function repeatedField(repeated: number): { repeated?: number } {
  return repeated > 0 ? { repeated } : {}
}
