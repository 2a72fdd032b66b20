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
