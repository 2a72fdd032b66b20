/**
 * Whether a node is still the primary its sentinels name.
 *
 * A primary that hung (a stopped process, a paused VM, a partition) past
 * Sentinel's `down-after-milliseconds` is replaced by its replica, and when
 * it wakes it still calls itself primary, with no replica, until Sentinel
 * turns it into a replica of the new one (seconds later: Sentinel waits
 * for it to report its role for a while first). A connection that never
 * noticed the hang still writes to it, and what it takes meanwhile is
 * thrown away when it is turned. For a rotated refresh token that is a
 * logout: the session is left with the token the IdP has consumed.
 * `ReplicaConfirmation` asks here only about a primary with no replica
 * connected, the state such a node is in; one with a replica is checked
 * by `WAIT` instead.
 */
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import type { Redis } from 'ioredis'
import type { RedisStoreConfig } from '../config/types.js'
import { closeRedisClient, createRedisClient, whenReady } from './connection.js'

type SentinelStore = Extract<RedisStoreConfig, { kind: 'sentinel' }>

/** Where the primary is, as the sentinels see it. */
export interface PrimaryRegistry {
  /**
   * True when a sentinel that answers names `node` (an address a
   * connection is on) as the primary; false when it names another;
   * `undefined` when none answers with an address (unreachable, or
   * monitoring no primary by that name). Only a true counts a write; a false
   * also means the connection is on a node the sentinels have replaced.
   */
  names(node: { readonly host: string; readonly port: number }): Promise<boolean | undefined>
}

/** A connection to each sentinel of a `redis+sentinel://` store, asked in turn. */
export class SentinelPrimary implements PrimaryRegistry {
  readonly #name: string
  readonly #sentinels: Redis[]

  constructor(target: SentinelStore) {
    this.#name = target.name
    // RESP2, as ioredis speaks to sentinels. They take no credentials, as
    // ioredis's own connections to them do not (src/redis/connection.ts).
    this.#sentinels = target.sentinels.map((s) =>
      createRedisClient(`${target.tls ? 'rediss' : 'redis'}://${hostOf(s.host)}:${s.port}`, { protocol: 2 }),
    )
  }

  /** Resolves once each sentinel is connected, or after `timeoutMs` regardless (see `whenReady`). */
  async whenReady(timeoutMs?: number): Promise<void> {
    await Promise.all(this.#sentinels.map((s) => whenReady(s, timeoutMs)))
  }

  async names(node: { readonly host: string; readonly port: number }): Promise<boolean | undefined> {
    for (const sentinel of this.#sentinels) {
      let named: unknown
      try {
        // What ioredis asks before each connect, so the address it gives
        // is the one a connection to the primary is made to. During a
        // failover it is already the replica being promoted.
        named = await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.#name)
      } catch {
        // Unreachable, or not yet connected: the next one may answer.
        continue
      }
      // Null: this sentinel monitors no primary by that name (just
      // deployed, or reset). ioredis asks the next one then, and so does this.
      if (!Array.isArray(named)) continue
      if (Number(named[1]) !== node.port) return false
      return sameHost(String(named[0]), node.host)
    }
    return undefined
  }

  async close(): Promise<void> {
    await Promise.all(this.#sentinels.map((s) => closeRedisClient(s)))
  }
}

/** A host as a URL holds it: an IPv6 address in brackets. */
function hostOf(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/** Whether a sentinel's `host` (an address, or a name with announce-hostnames) is the address `ip` a connection is on. */
async function sameHost(host: string, ip: string): Promise<boolean> {
  if (isIP(host) !== 0) return host === ip
  try {
    return (await lookup(host, { all: true })).some((a) => a.address === ip)
  } catch {
    return false
  }
}
