/**
 * Another request (on this or another instance) held the refresh lock for
 * longer than we were willing to wait. Answered as 503 with `Retry-After`;
 * the waiter never redeems the refresh token itself, since a rotated refresh
 * token is single-use (RFC 9700 §4.14.2).
 */
export class RefreshWaitTimeoutError extends Error {
  readonly code = 'GATEHOUSE_ERR_REFRESH_WAIT_TIMEOUT' as const
  readonly statusCode = 503
  /** The lock that was waited on, for logs. */
  readonly lock: string
  readonly waitedMs: number

  constructor(lock: string, waitedMs: number) {
    super(`Another request is still refreshing the access token (waited ${waitedMs} ms). Retry shortly.`)
    this.name = 'RefreshWaitTimeoutError'
    this.lock = lock
    this.waitedMs = waitedMs
  }
}

/** Builds the error a waiter gets after `ms` without the lock being released. */
export function refreshWaitTimeout(key: string, ms: number): RefreshWaitTimeoutError {
  return new RefreshWaitTimeoutError(key, ms)
}
