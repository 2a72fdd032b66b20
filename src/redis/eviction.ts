/**
 * Whether Redis may evict Gatehouse's keys under memory pressure.
 *
 * Every key Gatehouse writes has a TTL, so with a `maxmemory` and any
 * `maxmemory-policy` but `noeviction` (managed services default to
 * `volatile-lru`) Redis may drop any of them before it expires: an evicted
 * refresh lock lets a second instance redeem the same refresh token, and
 * the IdP answers that replay by revoking the grant (RFC 9700 §4.14.2); an
 * evicted session, or the record of a rotated token, signs its user out.
 * None of it fails a command, so nothing else would tell. The policy is read
 * with `INFO memory`, which managed services allow where they disable
 * `CONFIG GET`, on each primary the gateway writes to: the one a Sentinel
 * names, or each master of a Cluster.
 */
import type { FastifyBaseLogger } from 'fastify'
import { Cluster, type Redis, ReplyError } from 'ioredis'
import { Gauge, type Registry } from 'prom-client'
import type { LogCode } from '../errors.js'
import { type RedisClient, whenReady } from './connection.js'

/** What one primary says of its memory limit. */
export interface PrimaryMemory {
  /** `host:port` of the node. */
  readonly node: string
  /** `maxmemory`, bytes; 0 is no limit. */
  readonly maxmemory: number
  /** `maxmemory-policy`, as Redis names it. */
  readonly policy: string
}

/** The result of one check: each primary's memory limit, or why it could not be read. */
export type EvictionCheck =
  | { readonly checked: true; readonly primaries: readonly PrimaryMemory[] }
  | { readonly checked: false; readonly node: string; readonly reason: string }

/** The primaries that may evict keys: a memory limit and a policy other than `noeviction`. */
export function evicting(primaries: readonly PrimaryMemory[]): PrimaryMemory[] {
  return primaries.filter((p) => p.maxmemory > 0 && p.policy !== 'noeviction')
}

/**
 * Reads `maxmemory` and `maxmemory_policy` from `INFO memory` on each
 * primary `client` writes to. Resolves `checked: false` when a node refuses
 * `INFO` (an ACL without it) or does not report them; rejects when a node
 * cannot be reached, which the next connection retries.
 */
export async function checkEviction(client: RedisClient): Promise<EvictionCheck> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client]
  const primaries: PrimaryMemory[] = []
  for (const node of nodes) {
    const name = nodeName(node)
    let info: string
    try {
      await connected(node)
      info = await node.info('memory')
    } catch (err) {
      if (err instanceof ReplyError) return { checked: false, node: name, reason: (err as Error).message }
      throw err
    }
    const maxmemory = Number(/^maxmemory:(\d+)\r?$/m.exec(info)?.[1])
    const policy = /^maxmemory_policy:(\S+)\r?$/m.exec(info)?.[1]
    if (!Number.isSafeInteger(maxmemory) || policy === undefined)
      return {
        checked: false,
        node: name,
        reason: 'INFO memory does not report maxmemory and maxmemory_policy',
      }
    primaries.push({ node: name, maxmemory, policy })
  }
  return { checked: true, primaries }
}

/**
 * Checks the eviction policy now, if `client` is connected, and each time it
 * connects again (through Sentinel or a Cluster a failover may land on a
 * primary configured otherwise), logging `GATEHOUSE_STORE_EVICTION` when a
 * primary may evict keys, `GATEHOUSE_STORE_EVICTION_UNCHECKED` when the
 * policy cannot be read, and at debug level what it read otherwise, each
 * once until what it says changes. It never delays a request or readiness.
 * Returns the function that stops watching.
 */
export function watchEviction(client: RedisClient, log: FastifyBaseLogger, target: string): () => void {
  let stopped = false
  let said = ''
  const check = () => {
    checkEviction(client).then(
      (result) => {
        if (stopped) return
        const line = describe(result, target)
        const key = JSON.stringify(line.fields)
        if (key === said) return
        said = key
        log[line.level](line.fields, line.message)
      },
      // Unreachable: the next 'ready' checks again.
      () => {},
    )
  }
  client.on('ready', check)
  if (client.status === 'ready') check()
  return () => {
    stopped = true
    client.off('ready', check)
  }
}

/** The gauge `exportEvictedKeys` adds. */
export const EVICTED_KEYS_METRIC = 'gatehouse_redis_evicted_keys'

/**
 * Adds `gatehouse_redis_evicted_keys` to `registry`: the keys the primaries
 * have evicted since they started (`evicted_keys` of `INFO stats`, summed
 * over a Cluster's masters), read on scrape only, so no request waits on
 * it. An operator alerts on any rise. A scrape that cannot read it keeps
 * the value last read.
 */
export function exportEvictedKeys(client: RedisClient, registry: Registry): void {
  if (registry.getSingleMetric(EVICTED_KEYS_METRIC)) return
  new Gauge({
    name: EVICTED_KEYS_METRIC,
    help: 'Keys the Redis primaries evicted since they started (INFO stats evicted_keys, summed over Cluster masters): any is a lock, session or token lost before its TTL; run Redis with maxmemory-policy noeviction.',
    registers: [registry],
    async collect() {
      const evicted = await evictedKeys(client).catch(() => undefined)
      if (evicted !== undefined) this.set(evicted)
    },
  })
}

/** `evicted_keys` summed over the primaries, or `undefined` when a node does not report it. */
async function evictedKeys(client: RedisClient): Promise<number | undefined> {
  let total = 0
  for (const node of client instanceof Cluster ? client.nodes('master') : [client]) {
    await connected(node)
    const evicted = Number(/^evicted_keys:(\d+)\r?$/m.exec(await node.info('stats'))?.[1])
    if (!Number.isSafeInteger(evicted)) return undefined
    total += evicted
  }
  return total
}

/** The log line a check calls for. */
function describe(
  result: EvictionCheck,
  store: string,
): { level: 'warn' | 'info' | 'debug'; fields: Record<string, unknown>; message: string } {
  if (!result.checked) {
    const code: LogCode = 'GATEHOUSE_STORE_EVICTION_UNCHECKED'
    return {
      level: 'info',
      fields: { code, store, node: result.node, reason: result.reason },
      message: `could not read Redis's maxmemory-policy (${result.reason}); make sure it is noeviction, or that Redis never reaches maxmemory`,
    }
  }
  const nodes = evicting(result.primaries)
  if (nodes.length === 0)
    return {
      level: 'debug',
      fields: { store, primaries: result.primaries },
      message: 'Redis evicts no keys (maxmemory-policy noeviction, or no maxmemory)',
    }
  const code: LogCode = 'GATEHOUSE_STORE_EVICTION'
  const policies = [...new Set(nodes.map((n) => n.policy))].join(', ')
  return {
    level: 'warn',
    fields: { code, store, nodes },
    message:
      `Redis may evict Gatehouse's keys under memory pressure (maxmemory-policy ${policies} with a maxmemory): ` +
      'an evicted refresh lock lets a second instance redeem the same refresh token, which the identity provider ' +
      'answers by revoking the grant, and an evicted session or rotated refresh token signs its user out; ' +
      'set maxmemory-policy noeviction, or give Redis enough memory that it never reaches maxmemory',
  }
}

/**
 * Waits, bounded, for a node's connection: a Cluster opens one on its first
 * command, and without an offline queue that command would fail.
 */
async function connected(node: Redis): Promise<void> {
  // Only then: one that is away fails its command at once, and a scrape
  // while Redis is down does not wait on it.
  if (node.status !== 'wait') return
  node.connect().catch(() => {})
  await whenReady(node)
}

/** `host:port` of the node a connection is on: through Sentinel, the primary it was given. */
export function nodeName(node: Redis): string {
  const stream = node.stream
  if (stream?.remoteAddress && stream.remotePort) {
    const host = stream.remoteAddress.includes(':') ? `[${stream.remoteAddress}]` : stream.remoteAddress
    return `${host}:${stream.remotePort}`
  }
  return `${node.options.host}:${node.options.port}`
}
