import type { RedisClient } from '../redis/connection.js'
import type { StoreRefusals } from '../redis/refusals.js'
import type { SessionStore } from '../session/types.js'
import type { LockService, RefreshCooldowns, ReplayCache, TokenCache } from '../tokens/types.js'

/** The stateful parts of one instance, chosen by `session.store`. */
export interface Stores {
  readonly sessions: SessionStore
  readonly locks: LockService
  /**
   * Client-credentials tokens shared across instances; absent in memory
   * mode, where the process keeps its own (`Lasting`, `MemoryTokenCache`).
   */
  readonly clientTokens?: TokenCache
  /** The shared Redis connection, for plugins that keep state there (rate limits). */
  readonly redis?: RedisClient
  /** What that Redis refuses while up (an ACL without scripts or the gateway's keys, a full Redis), for the log and `/metrics`. */
  readonly refusals?: StoreRefusals
  /** Logout-token `jti`s already acted on. */
  readonly replay: ReplayCache
  /** Which refused token last forced a refresh, per session and route (`tokens.retryCooldown`). */
  readonly cooldowns: RefreshCooldowns
  /**
   * `session.secrets` changed by a config reload, for stores that derive
   * keys from them; the memory store keeps nothing sealed. The keys are
   * derived now, where a failure changes nothing; the function returned
   * puts them in use, and does not throw, so a reload applies whole or
   * not at all (src/server/reload.ts).
   */
  prepareSecrets?(secrets: readonly string[]): () => void
  /**
   * Closes the connections; `stop` aborts when the shutdown's drain ends,
   * and a store that has not answered by then is waited for no longer.
   */
  close(stop?: AbortSignal): Promise<void>
}
