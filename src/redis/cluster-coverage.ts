/**
 * Whether a Redis Cluster serves every one of its slots. A master that
 * dies takes its slots with it until the cluster promotes its replica (or
 * it comes back), and under `cluster-require-full-coverage yes`, Redis's
 * default, every node refuses every key (`CLUSTERDOWN`) from when the
 * cluster marks it failed. `PING` shows none of it, since it goes to a node
 * that answers, and ioredis drops its connection to a dead node, so a
 * check of the masters it is connected to does not see it either.
 *
 * So the slot map is read (`CLUSTER SLOTS`) from a node that answers, and
 * each master it names is asked `CLUSTER INFO` over a connection of this
 * check's own: one that does not answer within the store's connect and
 * command timeouts, one that says `cluster_state:fail`, or slots no master
 * holds, are requests failing.
 */
import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger } from 'fastify'
import { type Cluster, Redis, type RedisOptions, ReplyError } from 'ioredis'
import type { LogCode } from '../errors.js'
import { networkCause } from '../network-cause.js'
import { redisCause, replyWord } from './connection.js'

/** Slots of a Redis Cluster (cluster spec: CRC16 of the hash tag, modulo 16384). */
export const CLUSTER_SLOTS = 16_384

/** A master the slot map names that did not answer. */
export interface LostMaster {
  /** `host:port`, as the cluster announces it. */
  readonly node: string
  /** The slots it holds, as `CLUSTER NODES` writes them: `0-5460 10923`. */
  readonly slots: string
  /** Why no answer came: `ECONNREFUSED 127.0.0.1:7001`, the command timeout, or the refusal it answers every command with (BUSY, LOADING). */
  readonly cause: string
  /** True when it answers, but refuses every command (`cause` says how), its slots' requests as well. */
  readonly refused?: true
}

/** What of a Cluster's slots one check found not served. */
export interface UnservedSlots {
  /** How many of the 16384 slots are not served. */
  readonly count: number
  /** Masters that do not answer, by address. */
  readonly lost: readonly LostMaster[]
  /** Masters that answer and say `cluster_state:fail`, so refuse every key (`CLUSTERDOWN`), by address. */
  readonly failing: readonly string[]
  /** Slots the slot map gives no master. */
  readonly unassigned: number
}

/** Slot ranges by master address, from a `CLUSTER SLOTS` reply. */
type SlotMap = Map<string, [number, number][]>

/**
 * Reads a Cluster's slot map and asks each of its masters whether it
 * serves: `check()`. Owns one connection to each master, made when first
 * needed, dropped when it fails (the next check makes it again) and by
 * `close()`.
 */
export class ClusterCoverage {
  readonly #client: Cluster
  readonly #probes = new Map<string, Redis>()
  /**
   * The last connection error of each probe: its command fails only as
   * "Connection is closed." Kept while the probe is, and so only for
   * masters the slot map names: in Kubernetes a master's pod comes back
   * under a new IP, and each address it leaves would be an entry for good.
   */
  readonly #errors = new Map<string, Error>()
  #closed = false

  constructor(client: Cluster) {
    this.#client = client
  }

  /**
   * What is not served now; `undefined` when every slot is. Rejects when
   * no node gives the slot map: that is an outage, which `PING` reports.
   */
  async check(): Promise<UnservedSlots | undefined> {
    const map = await this.#slotMap()
    for (const node of this.#probes.keys()) if (!map.has(node)) this.#drop(node)
    // Together, so a check costs one timeout however many masters are silent.
    const states = await Promise.all(
      [...map].map(async ([node, ranges]) => ({ node, ranges, ...(await this.#state(node)) })),
    )
    let assigned = 0
    let count = 0
    const lost: LostMaster[] = []
    const failing: string[] = []
    for (const { node, ranges, cause, state, refused } of states.sort((a, b) =>
      a.node.localeCompare(b.node),
    )) {
      const held = ranges.reduce((sum, [first, last]) => sum + last - first + 1, 0)
      assigned += held
      if (cause !== undefined) {
        const slots = ranges.map(([first, last]) => (first === last ? `${first}` : `${first}-${last}`))
        lost.push({ node, slots: slots.join(' '), cause, ...(refused ? { refused } : {}) })
        count += held
      } else if (state === 'fail') {
        failing.push(node)
        count += held
      }
    }
    const unassigned = Math.max(0, CLUSTER_SLOTS - assigned)
    count += unassigned
    return count === 0 ? undefined : { count, lost, failing, unassigned }
  }

  /** Drops every connection this check made; a check still out makes no more. */
  close(): void {
    this.#closed = true
    for (const node of [...this.#probes.keys()]) this.#drop(node)
  }

  /**
   * The slot map, from whichever connected node gives it first (a frozen
   * one, still connected, would cost its command timeout), or, none
   * connected yet, the one the client picks.
   */
  async #slotMap(): Promise<SlotMap> {
    const ready = this.#client.nodes('all').filter((node) => node.status === 'ready')
    if (ready.length === 0) return slotMap(await this.#client.call('CLUSTER', 'SLOTS'), undefined)
    try {
      return await Promise.any(
        ready.map(async (node) => slotMap(await node.call('CLUSTER', 'SLOTS'), node.options.host)),
      )
    } catch (err) {
      throw (err as AggregateError).errors[0]
    }
  }

  /** `cluster_state` of one master, or why it did not answer. */
  async #state(node: string): Promise<{ state?: string | undefined; cause?: string; refused?: true }> {
    try {
      const info = String(await this.#probe(node).call('CLUSTER', 'INFO'))
      return { state: /^cluster_state:(\w+)/m.exec(info)?.[1] }
    } catch (err) {
      // A reply is an answer: an ACL without CLUSTER INFO lets requests
      // through all the same. Not these two, which a master gives every
      // command while it lasts, its slots' requests included, and which no
      // failover ends, since it still answers the cluster bus: a script
      // run past busy-reply-threshold (until it ends or SCRIPT KILL), and
      // a dataset loading after a restart.
      if (err instanceof ReplyError) {
        const word = replyWord(err)
        return word === 'BUSY' || word === 'LOADING' ? { cause: redisCause(err)!, refused: true } : {}
      }
      const cause = networkCause(this.#errors.get(node)) ?? redisCause(err) ?? (err as Error).message
      // A frozen master keeps the socket open: the next check connects anew.
      this.#drop(node)
      return { cause }
    }
  }

  #probe(node: string): Redis {
    if (this.#closed) throw new Error('Connection is closed.')
    const known = this.#probes.get(node)
    if (known !== undefined && known.status !== 'end') return known
    const at = node.lastIndexOf(':')
    // The store's user, password, TLS and timeouts, as its own connections
    // have them (the gateway sets no replyMapping, whose optional type the
    // constructor does not take as RedisOptions writes it).
    const { replyMapping: _, ...shared }: RedisOptions = this.#client.options.redisOptions ?? {}
    const probe = new Redis({
      ...shared,
      host: node.slice(0, at),
      port: Number(node.slice(at + 1)),
      lazyConnect: true,
      // One attempt per check; the next check makes the next.
      retryStrategy: () => null,
      // The command waits for the connection, which connectTimeout bounds.
      enableOfflineQueue: true,
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
    })
    // A probe dropped (its master gone from the map) may still report one.
    probe.on('error', (err: Error) => {
      if (this.#probes.get(node) === probe) this.#errors.set(node, err)
    })
    this.#probes.set(node, probe)
    this.#errors.delete(node)
    return probe
  }

  #drop(node: string): void {
    this.#probes.get(node)?.disconnect()
    this.#probes.delete(node)
    this.#errors.delete(node)
  }
}

/**
 * `CLUSTER SLOTS`: `[first, last, [host, port, id, …], …replicas]` a range.
 * A master whose address the cluster does not know is written with an
 * empty host (or `?`), meaning the node that answered.
 */
function slotMap(reply: unknown, askedHost: string | undefined): SlotMap {
  const map: SlotMap = new Map()
  for (const range of reply as [number, number, [string, number, ...unknown[]]][]) {
    const [first, last, [host, port]] = range
    const address = `${host === '' || host === '?' ? (askedHost ?? host) : host}:${port}`
    const ranges = map.get(address) ?? []
    ranges.push([Number(first), Number(last)])
    map.set(address, ranges)
  }
  for (const ranges of map.values()) ranges.sort((a, b) => a[0] - b[0])
  return map
}

/** What is not served and what it costs, for the log line: the masters named. */
export function describeUnserved(unserved: UnservedSlots): string {
  const parts = [
    ...unserved.lost.map(
      ({ node, slots, cause, refused }) =>
        `master ${node} (slots ${slots}) ${refused ? 'refuses every command' : 'does not answer'} (${cause})`,
    ),
    ...(unserved.failing.length > 0
      ? [`${unserved.failing.join(', ')} say${unserved.failing.length === 1 ? 's' : ''} cluster_state:fail`]
      : []),
    ...(unserved.unassigned > 0 ? [`${unserved.unassigned} slots are held by no master`] : []),
  ]
  return (
    `Redis Cluster does not serve ${unserved.count} of its ${CLUSTER_SLOTS} slots: ${parts.join('; ')}. ` +
    'Requests whose session, lock or token keys hash to them answer 503, and under ' +
    "cluster-require-full-coverage yes (Redis's default) every request that needs Redis does once the " +
    'cluster marks a master failed, until its replica is promoted or it is back; /readyz answers 503 meanwhile'
  )
}

/** What is not served as `/readyz` says it: how much, not which nodes, since `/readyz` is public. */
export function summarizeUnserved(unserved: UnservedSlots): string {
  return (
    `Redis Cluster does not serve ${unserved.count} of its ${CLUSTER_SLOTS} slots (a master does not answer or refuses every command, ` +
    'or the cluster says cluster_state:fail): requests whose keys hash to them answer 503: see the ' +
    'GATEHOUSE_STORE_SLOTS_UNSERVED log line'
  )
}

/**
 * Logs a Cluster's unserved slots once when found
 * (`GATEHOUSE_STORE_SLOTS_UNSERVED`), again only for a master lost since,
 * and once when every slot is served again (`GATEHOUSE_STORE_REFUSAL_OVER`,
 * with how long it lasted): what is unserved changes as the cluster marks
 * the master failed (its slots, then every slot under full coverage), and
 * that is the same outage. Told each check's finding and the one before.
 */
export function unservedSlotsTeller(
  log: FastifyBaseLogger,
  target: string,
): (now: UnservedSlots | undefined, before: UnservedSlots | undefined) => void {
  let since: number | undefined
  return (now, before) => {
    if (now !== undefined) {
      const known = new Set(before?.lost.map((m) => m.node))
      if (before !== undefined && now.lost.every((m) => known.has(m.node))) return
      since ??= performance.now()
      const code: LogCode = 'GATEHOUSE_STORE_SLOTS_UNSERVED'
      const { count, lost: nodes, failing, unassigned } = now
      log.warn({ code, store: target, unserved: count, nodes, failing, unassigned }, describeUnserved(now))
      return
    }
    if (before === undefined) return
    const outageMs = since === undefined ? undefined : Math.round(performance.now() - since)
    since = undefined
    const code: LogCode = 'GATEHOUSE_STORE_REFUSAL_OVER'
    log.info(
      { code, store: target, refusal: 'slots', outageMs },
      `Redis Cluster serves every slot again${outageMs === undefined ? '' : ` after ${outageMs} ms`}`,
    )
  }
}
