/*
 * The bounds of a duration the gateway keeps with a timer: Node fires a
 * timer of more than 2^31 - 1 ms at once.
 */
import { parseDuration } from './duration.js'
import type { Add } from './finding.js'

/** The parse, or NaN (which no comparison holds for) when the text does not parse. */
export function orNaN(parse: () => number): number {
  try {
    return parse()
  } catch {
    return Number.NaN
  }
}
/**
 * A duration the gateway keeps with a timer at most: a day. Node fires a
 * timer of more than 2^31 - 1 ms (about 24.8 days) at once, and some run a
 * sum or a multiple of one (a late answer's budget, a lock's safety release).
 */
const MAX_TIMED = 86_400_000

/**
 * A duration kept by a timer: at most `MAX_TIMED`, and, where it times a
 * call to `peer`, more than 0, which undici and AbortSignal read as no
 * timeout, or as one that has passed already.
 */
export function checkTimed(value: number | string, path: (string | number)[], add: Add, peer?: string): void {
  // A malformed one the schema has reported already.
  const ms = orNaN(() => parseDuration(value))
  if (peer !== undefined && ms === 0) add(path, `must be more than 0: every call to ${peer} has a timeout`)
  else if (ms > MAX_TIMED)
    add(
      path,
      'must be at most 1d: the gateway keeps it with a timer (Node fires one of more than 24.8 days at once)',
    )
}
