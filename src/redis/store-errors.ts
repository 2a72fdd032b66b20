import { errorCatalogue } from '../errors.js'

/**
 * The session store (Redis) could not serve a request: down, unreachable or
 * too slow. Answered as 503 with `Retry-After`; the session itself is kept,
 * so the user can carry on once the store is back. `cause` holds the
 * driver's error, for logs only.
 */
export class StoreUnavailableError extends Error {
  readonly code = 'GATEHOUSE_ERR_STORE_UNAVAILABLE' as const
  readonly statusCode = 503

  constructor(cause?: unknown) {
    super(errorCatalogue.GATEHOUSE_ERR_STORE_UNAVAILABLE.message, cause === undefined ? undefined : { cause })
    this.name = 'StoreUnavailableError'
  }
}
