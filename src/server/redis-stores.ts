import type { FastifyBaseLogger } from 'fastify'
import type { GatehouseConfig, RedisStoreConfig } from '../config/types.js'
import type { LogCode } from '../errors.js'
import { closeRedisClient, createRedisClient, type RedisClient, whenReady } from '../redis/connection.js'
import { ReplicaConfirmation } from '../redis/durability.js'
import { redisKeys } from '../redis/keys.js'
import { StoreRefusals } from '../redis/refusals.js'
import { SentinelPrimary } from '../redis/sentinel-primary.js'
import { RedisSessionStore } from '../session/redis-store.js'
import type { SessionStore } from '../session/types.js'
import { RedisLockService } from '../tokens/redis-lock.js'
import { RedisTokenCache } from '../tokens/redis-token-cache.js'
import { RedisRefreshCooldowns } from '../tokens/refresh-cooldown.js'
import { RedisReplayCache } from '../tokens/replay-cache.js'
import type { Stores } from './store-set.js'

/** Why the local session cache is off on a Redis Cluster; logged at startup and on /metrics. */
export const CLUSTER_CACHE_OFF =
  'Redis Cluster: CLIENT TRACKING is per node, so the local session cache is off and every request reads Redis'

/** Options of `createRedisStores` beyond the config. */
export interface RedisStoresOptions {
  /**
   * `false` skips confirming writes on a replica. It exists only so the test
   * suite can show that a failover loses unconfirmed refreshes; never turn
   * it off in production.
   */
  readonly confirmWrites?: boolean
  /** Where a cached client-credentials token that did not open is reported. */
  readonly log?: FastifyBaseLogger
}

/**
 * Sessions, locks and client tokens in one Redis (directly, through
 * Sentinel, or a Cluster), over one command connection, plus one for
 * writes that wait on a replica, one for lock releases and one for the
 * local session cache's invalidations; through Sentinel, one to each
 * sentinel, asked whether a primary without replicas is still theirs; on a
 * Cluster, one to each master, asked whether it serves its slots.
 */
export async function createRedisStores(
  config: GatehouseConfig,
  now: () => number,
  options: RedisStoresOptions = {},
): Promise<Stores> {
  const store = config.session.store as RedisStoreConfig
  // A node turned into a replica under a live connection answers its
  // writes READONLY and serves its reads a moment behind the new primary:
  // a refresh that wrote there, then read here, could redeem the refresh
  // token it had just spent. So a READONLY on either connection makes
  // both again, to wherever the address (or the sentinels) points now.
  const commandTimeout = config.session.storeTimeout
  const client: RedisClient = createRedisClient(store, {
    commandTimeout,
    onReadOnly: () => writer?.disconnect(true),
  })
  const writer: RedisClient | undefined =
    options.confirmWrites === false
      ? undefined
      : createRedisClient(store, { commandTimeout, onReadOnly: () => client.disconnect(true) })
  const primary =
    writer && store.kind === 'sentinel' ? new SentinelPrimary(store, { commandTimeout }) : undefined
  await Promise.all([whenReady(client), writer && whenReady(writer), primary?.whenReady()])
  const confirm =
    writer &&
    new ReplicaConfirmation({
      client: writer,
      // WAIT must give up before its command does (a timed-out WAIT would
      // read as Redis down, not as an unconfirmed write); never 0, which
      // blocks until a replica confirms.
      timeoutMs: Math.max(1, Math.min(500, Math.floor(commandTimeout / 2))),
      ...(primary
        ? {
            primary,
            // Reads and lock renewals on the old primary would see what the
            // sentinels are about to throw away.
            onStalePrimary: () => client.disconnect(true),
          }
        : {}),
    })
  const prefix = config.session.keyPrefix
  const refusals = new StoreRefusals(client, redisKeys(prefix))
  const locks = new RedisLockService({
    client,
    keyPrefix: prefix,
    refusals,
    ...(confirm ? { confirm } : {}),
  })
  const cacheOff = store.kind === 'cluster' ? CLUSTER_CACHE_OFF : undefined
  const { secrets } = config.session
  const sessions = new RedisSessionStore({
    client,
    keyPrefix: prefix,
    secrets,
    idleTimeoutMs: config.session.idleTimeout,
    now,
    refusals,
    ...(confirm ? { confirm } : {}),
    ...(store.kind !== 'cluster' && config.session.localCache > 0
      ? { cache: { url: store, maxEntries: config.session.localCache, commandTimeout } }
      : {}),
    ...(cacheOff && config.session.localCache > 0 ? { cacheOff } : {}),
  })
  await sessions.whenReady()
  const clientTokens = new RedisTokenCache({
    client,
    keyPrefix: prefix,
    secrets,
    onUnreadable(reason) {
      const code: LogCode = 'GATEHOUSE_CLIENT_TOKEN_UNREADABLE'
      options.log?.warn({ code, reason }, 'cached client-credentials token did not open; fetching a new one')
    },
  })
  return {
    sessions,
    locks,
    clientTokens,
    prepareSecrets(next) {
      const use = [sessions.prepareSecrets(next), clientTokens.prepareSecrets(next)]
      return () => {
        for (const step of use) step()
      }
    },
    replay: new RedisReplayCache({ client, keyPrefix: prefix }),
    cooldowns: new RedisRefreshCooldowns({ client, keyPrefix: prefix }),
    redis: client,
    refusals,
    async close(stop) {
      await Promise.all([locks.close(), sessions.close(stop)])
      refusals.close()
      // quit() waits for replies in flight; a dead Redis would make it hang.
      await Promise.all([
        closeRedisClient(client, undefined, stop),
        writer && closeRedisClient(writer, undefined, stop),
        primary?.close(stop),
      ])
    },
  }
}

/**
 * Says once why the local session cache is off: on a Redis Cluster, or
 * when Redis refuses `CLIENT TRACKING` (before 6.0, or an ACL without
 * `client`). The gateway stays correct; only every request then costs a
 * round trip.
 */
export function reportSessionCache(store: SessionStore, log: FastifyBaseLogger): void {
  if (!(store instanceof RedisSessionStore)) return
  const code: LogCode = 'GATEHOUSE_SESSION_CACHE_OFF'
  if (store.cacheOff) {
    log.warn({ code, reason: store.cacheOff }, store.cacheOff)
    return
  }
  const cache = store.cache
  if (!cache) return
  const warn = (err: Error) =>
    log.warn(
      { code, reason: err.message },
      'Redis refused CLIENT TRACKING; the local session cache is off and every request reads Redis',
    )
  if (cache.refused) warn(cache.refused)
  else cache.once('unsupported', warn)
}
