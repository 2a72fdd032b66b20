/**
 * Whether Redis, up and answering `PING`, will run the gateway's scripts
 * and take its writes. Four refusals look like an outage to every request
 * and like nothing to `PING`:
 *
 * - an ACL that refuses `EVAL` or `EVALSHA` (`-@scripting`): sessions,
 *   refresh locks and token writes are Lua scripts, so sign-ins, refreshes
 *   and sign-outs all fail (NOPERM). The refresh lock is a script too
 *   (redis-lock-scripts.ts), so no refresh token is redeemed meanwhile.
 * - a Redis at its `maxmemory` under `noeviction`, which refuses every
 *   write (OOM) and still serves reads: sessions whose tokens are fresh go
 *   on, and so do sign-outs (a `DEL` frees memory), while sign-ins and
 *   refreshes fail.
 * - a primary with `min-replicas-to-write` and fewer good replicas than
 *   that, which refuses every write (NOREPLICAS, a `DEL` included) and
 *   serves reads.
 * - an ACL that lets the scripts run but not write the gateway's keys: key
 *   patterns that leave out `session.keyPrefix` (`~another-app:*`), or a
 *   user without write commands. Every write is refused NOPERM inside its
 *   script, while `PING` and a script that names no key pass.
 *
 * Each primary is asked the way the gateway's own commands ask it:
 * `EVAL` and `EVALSHA` of a script that touches nothing, and a `SET` of a
 * key of its own with a short TTL (`RedisKeys.writeProbe`), on each master
 * of a Cluster. Nothing else tells: the per-request lines name the reply
 * (`OOM`, `NOPERM`) but not which commands, and PING succeeds throughout.
 *
 * A Cluster is also asked whether it serves every slot (cluster-coverage.ts):
 * with a master dead, PING still answers from the others, while requests
 * for that master's slots, or under full coverage all of them, fail.
 */
import { createHash } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger } from 'fastify'
import { Cluster, type Redis, ReplyError } from 'ioredis'
import { Gauge, type Registry } from 'prom-client'
import type { LogCode } from '../errors.js'
import {
  CLUSTER_SLOTS,
  ClusterCoverage,
  describeUnserved,
  summarizeUnserved,
  type UnservedSlots,
  unservedSlotsTeller,
} from './cluster-coverage.js'
import { type RedisClient, replyWord, whenReady } from './connection.js'
import { nodeName } from './eviction.js'
import type { RedisKeys } from './keys.js'

/** One refusal of one primary. */
export type StoreRefusal =
  | {
      readonly kind: 'scripting'
      /** `host:port` of the node. */
      readonly node: string
      /** The ACL user the gateway connects as. */
      readonly user: string
      /** The commands Redis answered NOPERM, as Redis names them. */
      readonly commands: readonly string[]
    }
  | { readonly kind: 'full'; readonly node: string }
  | { readonly kind: 'replicas'; readonly node: string }
  | {
      readonly kind: 'keys'
      readonly node: string
      readonly user: string
      /** The key under `session.keyPrefix` the user may not write. */
      readonly key: string
      /** Redis's refusal: whether the key pattern or the command refused it. */
      readonly reply: string
    }
  /** Slots of a Cluster that no master serves: one such refusal at most, for the whole Cluster. */
  | ({ readonly kind: 'slots' } & UnservedSlots)

/** What a refusal costs and what to do, for the log line: the node and the ACL user named. */
export function describeRefusal(refusal: StoreRefusal): string {
  if (refusal.kind === 'slots') return describeUnserved(refusal)
  if (refusal.kind === 'scripting')
    return (
      `Redis ACL user '${refusal.user}' may not run ${refusal.commands.join(', ')} (NOPERM) on ${refusal.node}: ` +
      "the gateway's sessions, refresh locks and token writes are Lua scripts, so sign-ins, refreshes and " +
      'sign-outs answer 503 and no refresh token is redeemed; allow the user ' +
      refusal.commands.map((c) => `+${c}`).join(' ')
    )
  if (refusal.kind === 'keys')
    return (
      `Redis ACL user '${refusal.user}' may not write ${refusal.key} on ${refusal.node} (${refusal.reply}): ` +
      'every session, refresh lock and token the gateway writes is a key under session.keyPrefix, so sign-ins, refreshes and ' +
      'sign-outs answer 503 and no refresh token is redeemed; allow the user those keys (a key pattern covering ' +
      'session.keyPrefix) and the commands that write them'
    )
  if (refusal.kind === 'replicas')
    return (
      `Redis at ${refusal.node} refuses writes (NOREPLICAS): fewer good replicas are connected than its ` +
      'min-replicas-to-write asks for (or they lag past min-replicas-max-lag), so sign-ins and refreshes answer 503 ' +
      'while sessions with fresh tokens are served; bring its replicas back, or lower min-replicas-to-write'
    )
  return (
    `Redis at ${refusal.node} refuses writes (OOM): its used memory is over maxmemory and it may evict ` +
    'nothing to make room (maxmemory-policy noeviction), so sign-ins and refreshes answer 503 while ' +
    'sessions with fresh tokens are served; raise maxmemory or free memory'
  )
}

/**
 * A refusal as `/readyz` says it: what is refused, not where or as whom,
 * since `/readyz` is on the public port; the log line says the rest.
 */
export function summarizeRefusal(refusal: StoreRefusal): string {
  if (refusal.kind === 'slots') return summarizeUnserved(refusal)
  if (refusal.kind === 'scripting')
    return `Redis's ACL refuses ${refusal.commands.join(', ')} (NOPERM), which every session write and refresh lock runs: see the GATEHOUSE_STORE_SCRIPTING_REFUSED log line`
  if (refusal.kind === 'keys')
    return "Redis's ACL refuses writes to the gateway's keys (NOPERM), which every session write and refresh lock makes: see the GATEHOUSE_STORE_KEYS_REFUSED log line"
  if (refusal.kind === 'replicas')
    return 'Redis refuses writes (NOREPLICAS): fewer good replicas than its min-replicas-to-write; sign-ins and refreshes fail, sessions with fresh tokens are served'
  return 'Redis refuses writes (OOM): used memory is over maxmemory under noeviction; sign-ins and refreshes fail, sessions with fresh tokens are served'
}

/** A script that reads and writes nothing: whether Redis runs scripts at all. */
const PROBE_SCRIPT = 'return 1'
const PROBE_SHA = createHash('sha1').update(PROBE_SCRIPT).digest('hex')

/** How long a write probe's key lives, ms: long enough to see, short enough to cost nothing. */
const PROBE_TTL_MS = 10_000 // 10 s

/** Least time between two checks a failed command starts, ms. */
const NOTICE_INTERVAL_MS = 1_000

/**
 * How long a check's answer serves `/readyz` and `/metrics`, ms. `/readyz`
 * is public and each check writes to every primary: without it, requests
 * one after another each made a check of their own (3 commands, a `SET`
 * among them, per primary), as fast as anyone could ask.
 */
const ANSWER_SERVES_MS = 1_000

/** Most hash tags tried to find one a master serves; with slots spread over masters, a few do. */
const TAGS_TRIED = 4_096

/**
 * Asks each primary `client` writes to whether it runs scripts and takes
 * writes, and, through `coverage`, whether a Cluster serves every slot.
 * Rejects when a node that serves cannot be reached: that is an outage,
 * which `PING` and the availability lines report.
 */
export async function checkRefusals(
  client: RedisClient,
  keys: RedisKeys,
  coverage?: ClusterCoverage,
): Promise<StoreRefusal[]> {
  const refusals: StoreRefusal[] = []
  const unserved = await coverage?.check()
  if (unserved !== undefined) refusals.push({ kind: 'slots', ...unserved })
  // Asking a master that does not answer would only wait out its timeouts.
  const lost = new Set(unserved?.lost.map((m) => m.node))
  for (const node of client instanceof Cluster ? client.nodes('master') : [client]) {
    if (lost.has(`${node.options.host}:${node.options.port}`)) continue
    if (node.status === 'wait') {
      node.connect().catch(() => {})
      await whenReady(node)
    }
    const name = nodeName(node)
    const commands: string[] = []
    for (const [command, first] of [
      ['eval', PROBE_SCRIPT],
      ['evalsha', PROBE_SHA],
    ] as const) {
      const refused = await replyOf(node.call(command, first, 0))
      if (refused?.startsWith('NOPERM')) commands.push(command)
    }
    if (commands.length > 0)
      refusals.push({ kind: 'scripting', node: name, user: node.options.username || 'default', commands })
    const key = probeKey(client, node, keys)
    if (key === undefined) continue
    const refused = await replyOf(node.set(key, '1', 'PX', PROBE_TTL_MS))
    if (refused?.startsWith('OOM')) refusals.push({ kind: 'full', node: name })
    else if (refused?.startsWith('NOREPLICAS')) refusals.push({ kind: 'replicas', node: name })
    // Not a script's refusal: this SET is no script, and a key pattern
    // does not bind a script that names no key, so the probes above pass.
    else if (refused?.startsWith('NOPERM'))
      refusals.push({
        kind: 'keys',
        node: name,
        user: node.options.username || 'default',
        key,
        reply: refused,
      })
  }
  return refusals
}

/**
 * The refusals last found, found again on request (`check`: one flight at a
 * time, shared by every caller), and who is told when they change.
 */
export class StoreRefusals {
  readonly #client: RedisClient
  readonly #keys: RedisKeys
  readonly #coverage: ClusterCoverage | undefined
  readonly #listeners = new Set<(now: readonly StoreRefusal[], before: readonly StoreRefusal[]) => void>()
  #last: readonly StoreRefusal[] = []
  #flight: Promise<readonly StoreRefusal[]> | undefined
  /** When the check whose answer `#last` is began; none yet: never. */
  #checkedAt = Number.NEGATIVE_INFINITY
  #nextNotice = 0

  constructor(client: RedisClient, keys: RedisKeys) {
    this.#client = client
    this.#keys = keys
    this.#coverage = client instanceof Cluster ? new ClusterCoverage(client) : undefined
  }

  /** What the last check found; none before the first. */
  get current(): readonly StoreRefusal[] {
    return this.#last
  }

  /** Checks now, or joins the check in flight; rejects when Redis cannot be reached. */
  check(): Promise<readonly StoreRefusal[]> {
    const started = performance.now()
    this.#flight ??= checkRefusals(this.#client, this.#keys, this.#coverage)
      .then((found) => {
        const before = this.#last
        this.#last = found
        this.#checkedAt = started
        if (JSON.stringify(found) !== JSON.stringify(before))
          for (const listener of [...this.#listeners]) listener(found, before)
        return found
      })
      .finally(() => {
        this.#flight = undefined
      })
    return this.#flight
  }

  /**
   * The answer of a check begun less than a second ago, or `check()`: for
   * `/readyz` and `/metrics`, which anyone may ask as often as they like.
   * A check that failed is not reused, nor one older than a reconnect's,
   * whose own check replaces it.
   */
  recent(): Promise<readonly StoreRefusal[]> {
    if (this.#flight === undefined && performance.now() - this.#checkedAt < ANSWER_SERVES_MS)
      return Promise.resolve(this.#last)
    return this.check()
  }

  /**
   * Told of a command that failed: a refusal (`NOPERM`, `OOM`,
   * `NOREPLICAS`, a Cluster's `CLUSTERDOWN`) checks again, at most once a
   * second, so the line that names it comes with the first request it
   * fails and not only at the next connect, probe or scrape.
   */
  noticed(err: unknown): void {
    const word = replyWord(err)
    if (word !== 'NOPERM' && word !== 'OOM' && word !== 'NOREPLICAS' && word !== 'CLUSTERDOWN') return
    const now = performance.now()
    if (now < this.#nextNotice) return
    this.#nextNotice = now + NOTICE_INTERVAL_MS
    this.check().catch(() => {})
  }

  /** Drops the connections the Cluster's slot check made; the client is its owner's to close. */
  close(): void {
    this.#coverage?.close()
  }

  /** Tells `listener` of each change; returns the function that stops telling it. */
  onChange(listener: (now: readonly StoreRefusal[], before: readonly StoreRefusal[]) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }
}

/**
 * Checks now, if `client` is connected, and each time it connects again
 * (a failover may land on a primary configured otherwise), and logs each
 * refusal once when it is first found (`GATEHOUSE_STORE_SCRIPTING_REFUSED`,
 * `GATEHOUSE_STORE_KEYS_REFUSED`, `GATEHOUSE_STORE_FULL`,
 * `GATEHOUSE_STORE_SHORT_OF_REPLICAS`) and once when it is gone
 * (`GATEHOUSE_STORE_REFUSAL_OVER`), whoever's check found it: this
 * watch's, `/readyz`'s or a metrics scrape's. Returns the function that
 * stops watching.
 */
export function watchRefusals(
  refusals: StoreRefusals,
  client: RedisClient,
  log: FastifyBaseLogger,
  target: string,
): () => void {
  const check = () => {
    // Unreachable: the next 'ready' checks again.
    refusals.check().catch(() => {})
  }
  // A Cluster's node connection made or dropped (a master died, a MOVED
  // named a promoted replica): whether every slot is served may have
  // changed, and a check of the last second says so as well as a new one.
  const slotsMoved = () => {
    refusals.recent().catch(() => {})
  }
  const slots = unservedSlotsTeller(log, target)
  const told = (now: readonly StoreRefusal[], before: readonly StoreRefusal[]) => {
    slots(
      now.find((r) => r.kind === 'slots'),
      before.find((r) => r.kind === 'slots'),
    )
    const key = (r: StoreRefusal) => (r.kind === 'slots' ? r.kind : `${r.kind} ${r.node}`)
    const was = new Map(before.map((r) => [key(r), r]))
    const is = new Map(now.map((r) => [key(r), r]))
    for (const refusal of now) {
      const earlier = was.get(key(refusal))
      if (earlier !== undefined && JSON.stringify(earlier) === JSON.stringify(refusal)) continue
      if (refusal.kind === 'slots') continue
      if (refusal.kind === 'scripting') {
        const code: LogCode = 'GATEHOUSE_STORE_SCRIPTING_REFUSED'
        const { node, user, commands } = refusal
        log.error({ code, store: target, node, user, commands }, describeRefusal(refusal))
      } else if (refusal.kind === 'keys') {
        const code: LogCode = 'GATEHOUSE_STORE_KEYS_REFUSED'
        const { node, user, key, reply } = refusal
        log.error({ code, store: target, node, user, key, reply }, describeRefusal(refusal))
      } else if (refusal.kind === 'replicas') {
        const code: LogCode = 'GATEHOUSE_STORE_SHORT_OF_REPLICAS'
        log.warn({ code, store: target, node: refusal.node }, describeRefusal(refusal))
      } else {
        const code: LogCode = 'GATEHOUSE_STORE_FULL'
        log.warn({ code, store: target, node: refusal.node }, describeRefusal(refusal))
      }
    }
    for (const refusal of before) {
      if (is.has(key(refusal)) || refusal.kind === 'slots') continue
      const code: LogCode = 'GATEHOUSE_STORE_REFUSAL_OVER'
      log.info(
        { code, store: target, node: refusal.node, refusal: refusal.kind },
        refusal.kind === 'scripting'
          ? 'Redis runs the gateway’s scripts again'
          : refusal.kind === 'keys'
            ? 'Redis lets the gateway write its keys again'
            : refusal.kind === 'replicas'
              ? 'Redis has the replicas it asks for again, and takes writes'
              : 'Redis takes writes again',
      )
    }
  }
  // Found before this watch began (a request's failure): said now.
  if (refusals.current.length > 0) told(refusals.current, [])
  const stop = refusals.onChange(told)
  client.on('ready', check)
  client.on('+node', slotsMoved).on('-node', slotsMoved)
  if (client.status === 'ready') check()
  return () => {
    stop()
    client.off('ready', check).off('+node', slotsMoved).off('-node', slotsMoved)
  }
}

/** The gauge `exportRefusals` adds. */
export const REFUSING_METRIC = 'gatehouse_redis_refusing'

/**
 * Adds `gatehouse_redis_refusing{refusal="full"|"keys"|"replicas"|"scripting"|"slots"}` to `registry`:
 * 1 while a primary refuses so (or a Cluster leaves slots unserved), else 0, checked on scrape (or the check of the last second). An operator
 * alerts on it: a full Redis keeps `/readyz` at `degraded` (200), which
 * no load balancer acts on. A scrape that cannot reach Redis keeps the
 * values last read.
 */
export function exportRefusals(refusals: StoreRefusals, registry: Registry): void {
  if (registry.getSingleMetric(REFUSING_METRIC)) return
  new Gauge({
    name: REFUSING_METRIC,
    help: "1 while a Redis primary refuses the gateway's writes for being full (refusal=full: OOM, used memory over maxmemory under noeviction) or for being short of replicas (refusal=replicas: NOREPLICAS, fewer good replicas than min-replicas-to-write), its scripts for the ACL (refusal=scripting: NOPERM on EVAL or EVALSHA) or its keys for the ACL (refusal=keys: NOPERM on a SET under session.keyPrefix), or while a Redis Cluster does not serve every slot (refusal=slots: a master does not answer or refuses every command, BUSY or LOADING, or the cluster says cluster_state:fail), checked on scrape; sign-ins and refreshes answer 503 meanwhile, and sign-outs too unless Redis is only full.",
    labelNames: ['refusal'],
    registers: [registry],
    async collect() {
      const found = await refusals.recent().catch(() => undefined)
      if (found === undefined) return
      for (const kind of ['full', 'keys', 'replicas', 'scripting', 'slots'] as const)
        this.set({ refusal: kind }, found.some((r) => r.kind === kind) ? 1 : 0)
    },
  })
}

/** The error reply a command got, or `undefined` if it succeeded; rejects on anything but a reply. */
async function replyOf(command: Promise<unknown>): Promise<string | undefined> {
  try {
    await command
    return undefined
  } catch (err) {
    if (err instanceof ReplyError) return (err as Error).message
    throw err
  }
}

/**
 * The write probe's key on `node`: on a Cluster, one whose hash tag lands
 * in a slot `node` serves, so the `SET` runs there and not as a MOVED;
 * `undefined` while the slot map names none of its slots.
 */
function probeKey(client: RedisClient, node: Redis, keys: RedisKeys): string | undefined {
  if (!(client instanceof Cluster)) return keys.writeProbe('0')
  const self = `${node.options.host}:${node.options.port}`
  for (let tag = 0; tag < TAGS_TRIED; tag++)
    if (client.slots[slotOf(String(tag))]?.[0] === self) return keys.writeProbe(String(tag))
  return undefined
}

/** A hash tag's Cluster slot: CRC16-XMODEM modulo 16384 (Redis Cluster spec, keys distribution model). */
function slotOf(tag: string): number {
  let crc = 0
  for (const byte of Buffer.from(tag)) {
    crc ^= byte << 8
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc % CLUSTER_SLOTS
}
