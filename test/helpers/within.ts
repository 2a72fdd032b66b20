/**
 * `promise`, or a rejection naming `what` if it has not settled within
 * `ms`: a hang fails the test that waits for it, it does not time the run out.
 */
export function within<T>(promise: Promise<T>, what: string, ms = 5_000): Promise<T> {
  let bound: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      bound = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(bound))
}

/**
 * Polls a condition until it holds or the deadline passes: for a state no
 * event announces (a peer's recovery, a failover, a count that drains).
 * `failure` says what did not happen.
 */
export async function pollUntil(
  check: () => Promise<boolean>,
  deadlineMs = 10_000,
  failure = 'condition not met',
): Promise<void> {
  const end = Date.now() + deadlineMs
  while (Date.now() < end) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`${failure} within ${deadlineMs} ms`)
}
