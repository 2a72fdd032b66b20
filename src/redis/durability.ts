/**
 * Writes that count only once a replica has them.
 *
 * Redis replicates asynchronously, so a write acknowledged by a primary that
 * dies a moment later can vanish when Sentinel (or a Cluster) promotes a
 * replica. For a rotated refresh token that is a logout: the session is
 * left holding a token the IdP has consumed, the next refresh replays it,
 * and the IdP revokes the grant (RFC 9700 §4.14.2). For the refresh lock it
 * is a second holder on the new primary. `WAIT 1 <timeout>` after the write
 * makes the primary confirm that a replica has received it; a write it
 * cannot confirm is reported as not done (503), so its result is never used.
 */
import { type ChainableCommander, Cluster, type Redis } from 'ioredis'
import type { RedisClient } from './connection.js'
import { guarded, storeUnavailable, writeRefused } from './connection.js'
import type { PrimaryRegistry } from './sentinel-primary.js'

/** Options of `ReplicaConfirmation`. */
export interface ReplicaConfirmationOptions {
  /**
   * The connection durable writes go over. `WAIT` blocks the connection it
   * is sent on, so it should be one of their own: reads on the request path
   * must not queue behind a replica that is slow to answer.
   */
  readonly client: RedisClient
  /** Longest wait for a replica to confirm, ms. Default 500. */
  readonly timeoutMs?: number
  /**
   * Through Sentinel, where the sentinels say the primary is: a primary
   * with no replica connected counts a write only while they name it
   * (sentinel-primary.ts). Absent: such a primary always does.
   */
  readonly primary?: PrimaryRegistry
  /**
   * Told when a write went to a node the sentinels no longer name, after
   * this connection was dropped to find the primary again: the owner drops
   * its other connections to that node.
   */
  readonly onStalePrimary?: () => void
}

/**
 * Runs writes on a key's primary and, when that primary has replicas
 * connected, waits for one to confirm them. A primary with none (a single
 * Redis, a Cluster without replicas, or a promoted replica whose peers are
 * gone) has nothing to wait for: there is no copy a failover could promote.
 * Through Sentinel such a primary counts only while the sentinels name it:
 * an old primary that woke up after its failover is in that state too.
 */
export class ReplicaConfirmation {
  readonly #client: RedisClient
  readonly #timeout: number
  readonly #primary: PrimaryRegistry | undefined
  readonly #onStalePrimary: (() => void) | undefined
  /** Bumped at every connect and close: a write and the address read after it were on one connection only if it did not move. */
  #connection = 0

  constructor(options: ReplicaConfirmationOptions) {
    this.#client = options.client
    this.#timeout = options.timeoutMs ?? 500
    this.#primary = options.client instanceof Cluster ? undefined : options.primary
    this.#onStalePrimary = options.onStalePrimary
    if (this.#primary) {
      const moved = () => {
        this.#connection++
      }
      this.#client.on('ready', moved).on('close', moved)
    }
  }

  /** The connection durable writes use; callers define their scripts on it. */
  get client(): RedisClient {
    return this.#client
  }

  /**
   * Queues `ROLE` and the caller's commands in one pipeline, so in a Cluster
   * they all go to the node that owns `key`; resolves with the replies of
   * the caller's commands once a replica has confirmed them. Rejects with
   * `StoreUnavailableError` when a command fails or no replica confirms in time.
   */
  async write(key: string, queue: (pipeline: ChainableCommander) => void): Promise<unknown[]> {
    const connection = this.#connection
    const build = () => {
      const pipeline = this.#client.pipeline().role()
      queue(pipeline)
      return pipeline
    }
    let results = await this.#run(build)
    const redirected = results.slice(1)
    if (redirected.length > 0 && redirected.every(([err]) => err?.message.startsWith('MOVED '))) {
      // A Cluster moved the key's slot (a replica promoted after its master
      // failed). ioredis follows MOVED, and updates its slot map, only for
      // a single command or a pipeline whose every command was redirected;
      // ROLE names no key and never is, so without this the map would stay
      // stale and every confirmed write to those slots fail for good. The
      // redirected commands did not run: a single command on the key
      // updates the map, and the pipeline runs once more where it points.
      await guarded(() => this.#client.exists(key))
      results = await this.#run(build)
    }
    const [role, ...rest] = this.#replies(results) as [unknown[], ...unknown[]]
    // ROLE of a primary: ['master', offset, [[ip, port, offset], ...]], the
    // replicas connected right now.
    const replicas = role[0] === 'master' ? (role[2] as unknown[]).length : 0
    const named = replicas === 0 && this.#primary ? await this.#named(connection) : true
    if (named === false) {
      // A primary that hung past its failover and woke up a primary
      // without replicas: the sentinels turn it into a replica of the new
      // one within seconds, dropping what it took. The reconnect asks them
      // where the primary is now.
      ;(this.#client as Redis).disconnect(true)
      this.#onStalePrimary?.()
      throw writeRefused('the primary that took the write is no longer the one the sentinels name')
    }
    if (named === undefined) {
      // No sentinel answers: the write is not vouched for, but nothing says
      // the primary was replaced. The connections stay: a reconnect needs
      // a sentinel to find any primary, so dropping them left every read,
      // /readyz included, answering 503 until one came back.
      throw writeRefused('no sentinel answered whether the primary that took the write is still theirs')
    }
    if (replicas > 0) {
      // WAIT names no key; EXISTS routes the pipeline to the primary that
      // took the write when the connection is a Cluster. Never run again
      // on MOVED: WAIT on another node would count replicas of writes this
      // connection never made there, and confirm nothing.
      const [, acked] = this.#replies(
        await this.#run(() => this.#client.pipeline().exists(key).call('WAIT', '1', String(this.#timeout))),
      ) as [number, number]
      if (acked < 1) {
        throw writeRefused(`no replica confirmed the write within ${this.#timeout} ms`)
      }
    }
    return rest
  }

  /**
   * Whether the sentinels name the node this connection is on, the one
   * that took the write (`undefined`: none answered): false if the
   * connection has moved since the write began, whose address would then
   * be another's.
   */
  async #named(connection: number): Promise<boolean | undefined> {
    const stream = (this.#client as Redis).stream
    const address = { host: stream?.remoteAddress, port: stream?.remotePort }
    if (connection !== this.#connection || address.host === undefined || address.port === undefined)
      return false
    return this.#primary!.names({ host: address.host, port: address.port })
  }

  async #run(build: () => ChainableCommander): Promise<[Error | null, unknown][]> {
    let results: [Error | null, unknown][] | null
    try {
      results = await build().exec()
    } catch (err) {
      throw storeUnavailable(err)
    }
    // ioredis answers null only for a MULTI that a WATCH discarded; a
    // plain pipeline resolves to its replies, however many failed.
    /* c8 ignore next -- unreachable: see above */
    if (!results) throw storeUnavailable(new Error('the pipeline was discarded'))
    return results
  }

  #replies(results: [Error | null, unknown][]): unknown[] {
    const failed = results.find(([err]) => err)
    if (failed) throw storeUnavailable(failed[0])
    return results.map(([, reply]) => reply)
  }
}
