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
   * True when the newest configuration among the sentinels that answer
   * (the highest config epoch) names `node` (an address a connection is
   * on) as the primary; false when it names another;
   * `undefined` when none answers with an address (unreachable, or
   * monitoring no primary by that name). Only a true counts a write; a false
   * also means the connection is on a node the sentinels have replaced.
   */
  names(node: { readonly host: string; readonly port: number }): Promise<boolean | undefined>
}

/** A connection to each sentinel of a `redis+sentinel://` store, asked together. */
export class SentinelPrimary implements PrimaryRegistry {
  readonly #name: string
  readonly #sentinels: Redis[]

  /**
   * `commandTimeout`: budget of one question to a sentinel, ms: the store's
   * `session.storeTimeout`, as ioredis's own questions to them have it
   * (`sentinelCommandTimeout`). Default 1000.
   */
  constructor(target: SentinelStore, options: { readonly commandTimeout?: number } = {}) {
    this.#name = target.name
    // RESP2, as ioredis speaks to sentinels. They take no credentials, as
    // ioredis's own connections to them do not (src/redis/connection.ts).
    this.#sentinels = target.sentinels.map((s) =>
      createRedisClient(`${target.tls ? 'rediss' : 'redis'}://${hostOf(s.host)}:${s.port}`, {
        protocol: 2,
        ...(options.commandTimeout === undefined ? {} : { commandTimeout: options.commandTimeout }),
      }),
    )
  }

  /** Resolves once each sentinel is connected, or after `timeoutMs` regardless (see `whenReady`). */
  async whenReady(timeoutMs?: number): Promise<void> {
    await Promise.all(this.#sentinels.map((s) => whenReady(s, timeoutMs)))
  }

  async names(node: { readonly host: string; readonly port: number }): Promise<boolean | undefined> {
    // Every sentinel, and the newest configuration among their answers: a
    // sentinel restarted from the config it was deployed with after its
    // primary died names that dead primary, at the epoch it started with,
    // for as long as it meets no peer (it meets them only through the
    // primaries it monitors). ioredis, finding that primary unreachable,
    // asks the next sentinel and connects to the promoted one; taking the
    // first answer here called that primary replaced, and every write to
    // it, without replicas since its failover, answered 503 and dropped its
    // connections while that sentinel came first in the list. Sentinel's
    // own rule settles it: the higher config epoch wins.
    const answers = await Promise.all(this.#sentinels.map((sentinel) => this.#primaryOf(sentinel)))
    let newest: NamedPrimary | undefined
    // Of equal epochs the first in the list, as ioredis asks them.
    for (const answer of answers) if (answer && (!newest || answer.epoch > newest.epoch)) newest = answer
    if (!newest) return undefined
    if (newest.port !== node.port) return false
    return sameHost(newest.host, node.host)
  }

  /** The primary `sentinel` names, with its config epoch; `undefined` when it names none. */
  async #primaryOf(sentinel: Redis): Promise<NamedPrimary | undefined> {
    let replies: [Error | null, unknown][] | null
    try {
      // What ioredis asks before each connect, so the address it gives
      // is the one a connection to the primary is made to. During a
      // failover it is already the replica being promoted. SENTINEL MASTER
      // gives the epoch of the configuration it names.
      replies = await sentinel
        .pipeline()
        .call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.#name)
        .call('SENTINEL', 'MASTER', this.#name)
        .exec()
    } catch {
      // Unreachable, or not yet connected: the others may answer.
      return undefined
    }
    // Null only for a MULTI that a WATCH discarded (ioredis); this is a plain pipeline.
    /* c8 ignore next -- unreachable: see above */
    const [named, master] = replies ?? []
    // Null: this sentinel monitors no primary by that name (just deployed,
    // or reset). ioredis asks the next one then; here it has no say.
    if (!named || named[0] || !Array.isArray(named[1])) return undefined
    const [host, port] = named[1] as unknown[]
    return { host: String(host), port: Number(port), epoch: configEpochOf(master) }
  }

  async close(stop?: AbortSignal): Promise<void> {
    await Promise.all(this.#sentinels.map((s) => closeRedisClient(s, undefined, stop)))
  }
}

/** A primary as one sentinel names it. */
interface NamedPrimary {
  readonly host: string
  readonly port: number
  /** The config epoch of the sentinel's view (`SENTINEL MASTER`); -1 when it did not say. */
  readonly epoch: number
}

/** `config-epoch` of a `SENTINEL MASTER` reply (RESP2: a flat list of fields and values), or -1. */
function configEpochOf(reply: [Error | null, unknown] | undefined): number {
  const fields = reply?.[0] ? undefined : reply?.[1]
  if (!Array.isArray(fields)) return -1
  const at = fields.indexOf('config-epoch')
  const epoch = at < 0 || at % 2 !== 0 ? Number.NaN : Number(fields[at + 1])
  return Number.isInteger(epoch) ? epoch : -1
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
