/**
 * undici arms its connect timeout and its HTTP/1 `headersTimeout` and
 * `bodyTimeout` with "fast timers" (lib/util/timers.js,
 * lib/dispatcher/client-h1.js), which one 499 ms tick checks: each fires
 * between one and two ticks after it is armed or refreshed, so up to about a
 * second late whatever its length. A 100 ms route timeout let answers
 * through after 600 ms and gave its 504 after a second.
 */
const UNDICI_ON_TIME_FROM = 5_000 // 5 s: undici's timer is then at most a fifth late

/**
 * True when a budget of `ms` is short enough for undici's lateness to
 * matter, and so is kept by a native timer of the gateway's own, which
 * fires first. Longer budgets are left to undici alone: a timer of our own
 * would cost every request on the routes the bench measures (30 s and 5 s)
 * for a precision nobody asked of them.
 */
export function needsOwnTimer(ms: number): boolean {
  return ms > 0 && ms < UNDICI_ON_TIME_FROM
}
