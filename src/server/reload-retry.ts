/**
 * How a reload refused for a reason not in the file (its IdP could not be
 * discovered, its app failed to build) is tried again: the same bytes may
 * well apply a moment later, and nothing else would read them again.
 */
export interface ReloadRetry {
  /** Retries after the first refusal; 0 turns them off. */
  readonly attempts: number
  /** Before the first retry, ms; each next one waits twice as long, up to `maxDelay`. */
  readonly delay: number
  /** ms. */
  readonly maxDelay: number
}

/** 5, 10, 20, 40 and 60 s: about two and a half minutes for the IdP to come back. */
export const DEFAULT_RELOAD_RETRY: ReloadRetry = {
  attempts: 5,
  delay: 5_000, // 5 s
  maxDelay: 60_000, // 1 min
}

/** The wait before retry `n` (from 1), ms. */
export function retryDelay(retry: ReloadRetry, n: number): number {
  return Math.min(retry.delay * 2 ** (n - 1), retry.maxDelay)
}
