import type { GatehouseConfig } from '../config/types.js'
import { createRedisClient, whenReady } from '../session/redis-connection.js'
import { RedisSessionStore } from '../session/redis-store.js'
import { RedisLockService } from '../tokens/redis-lock.js'
import { RedisTokenCache } from '../tokens/redis-token-cache.js'
import { RedisReplayCache } from '../tokens/replay-cache.js'
import type { Backends } from './backends.js'

/** Sessions, locks and client tokens in one Redis, over one command connection (plus one for pub/sub). */
export async function createRedisBackends(config: GatehouseConfig, now: () => number): Promise<Backends> {
  const client = createRedisClient(config.session.store)
  await whenReady(client)
  const prefix = config.session.keyPrefix
  const locks = new RedisLockService({ client, keyPrefix: prefix })
  return {
    sessions: new RedisSessionStore({
      client,
      keyPrefix: prefix,
      idleTimeoutMs: config.session.idleTimeout,
      now,
    }),
    locks,
    clientTokens: new RedisTokenCache({ client, keyPrefix: prefix }),
    replay: new RedisReplayCache({ client, keyPrefix: prefix }),
    redis: client,
    async close() {
      await locks.close()
      // quit() waits for replies in flight; a dead Redis would make it hang.
      await Promise.race([client.quit().catch(() => {}), new Promise((r) => setTimeout(r, 1_000).unref())])
      client.disconnect()
    },
  }
}
