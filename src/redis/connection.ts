import type { EventEmitter } from 'node:events'
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { RedisStoreConfig } from '../config/types.js'
import { StoreUnavailableError } from '../errors.js'

export interface RedisConnectionOptions {
  /** Budget of one command, ms; a hung Redis must not hold requests. */
  readonly commandTimeout?: number
  /** Budget of one connection attempt, ms. */
  readonly connectTimeout?: number
  /** Longest pause between reconnection attempts, ms. */
  readonly maxReconnectDelay?: number
  /**
   * How long a connection may stay silent while a reply is owed, ms, before
   * it is dropped and made again. Default: twice the command timeout.
   */
  readonly socketTimeout?: number
  /** RESP version; default 3. */
  readonly protocol?: 2 | 3
  /** Subscribe again after a reconnect; default true. */
  readonly autoResubscribe?: boolean
  /**
   * Told when the node answered `READONLY` (the connection is then made
   * again): the owner's other connections to that node may only read
   * from it, which a replica serves a moment behind the primary.
   */
  readonly onReadOnly?: () => void
}

/** A connection to one Redis (directly or through Sentinel) or to a Redis Cluster. */
export type RedisClient = Redis | Cluster

/**
 * One ioredis connection tuned for a request path: commands fail fast while
 * Redis is away (no offline queue, no retries per request, a command
 * timeout), and the connection keeps reconnecting by itself with capped
 * backoff, so the gateway recovers when Redis does without a restart.
 *
 * `target` is a `redis://` URL or a parsed `session.store`. Through
 * Sentinel, every reconnect asks the sentinels for the current primary, so
 * a promoted replica is found without a restart; a Cluster follows its
 * slot map through MOVED redirections.
 */
export function createRedisClient(target: string, options?: RedisConnectionOptions): Redis
export function createRedisClient(
  target: string | RedisStoreConfig,
  options?: RedisConnectionOptions,
): RedisClient
export function createRedisClient(
  target: string | RedisStoreConfig,
  options: RedisConnectionOptions = {},
): RedisClient {
  const maxDelay = options.maxReconnectDelay ?? 2_000
  const commandTimeout = options.commandTimeout ?? 1_000
  const node = {
    commandTimeout,
    // A command timeout fails the command and keeps the socket. A primary
    // that hangs (a stopped process, a paused VM, a partition) sends no
    // reset, and the kernel answers keep-alives for a stopped one: without
    // this the connection stayed on it after Sentinel had promoted its
    // replica, every command timing out until it woke, and then wrote to
    // it while it still called itself primary. Dropping a connection that
    // owes a reply past twice the command timeout makes the reconnect ask
    // the sentinels (or the Cluster's slot map) where the primary is now.
    socketTimeout: options.socketTimeout ?? 2 * commandTimeout,
    connectTimeout: options.connectTimeout ?? 2_000,
    // An offline queue would hold requests for as long as the outage lasts;
    // failing them at once lets the gateway answer 503 within its budget.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Never gives up (a null would stop reconnecting for good).
    retryStrategy: (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 10), maxDelay),
    lazyConnect: false,
    // A node turned into a replica under a live connection (an operator's
    // REPLICAOF, a managed service that moves its primary endpoint's name
    // to the promoted replica) answers every write READONLY for as long as
    // that connection lasts, which may be for ever. The write fails (503)
    // and the connection is made again, resolving the name, or asking the
    // sentinels, anew.
    reconnectOnError: (err: Error) => {
      if (!err.message.startsWith('READONLY')) return false
      options.onReadOnly?.()
      return true
    },
    ...(options.protocol ? { protocol: options.protocol } : {}),
    ...(options.autoResubscribe === false ? { autoResubscribe: false } : {}),
  } satisfies RedisOptions
  const client = connect(target, node, maxDelay)
  // Without a listener, ioredis reports connection errors as unhandled
  // 'error' events and the process dies; outages surface through failed
  // commands instead.
  client.on('error', () => {})
  return client
}

/** The per-node options, as written: only the keys set, which ioredis's overloads need. */
type NodeOptions = Pick<
  RedisOptions,
  | 'commandTimeout'
  | 'socketTimeout'
  | 'connectTimeout'
  | 'enableOfflineQueue'
  | 'maxRetriesPerRequest'
  | 'lazyConnect'
> & {
  reconnectOnError: (err: Error) => boolean
  retryStrategy: (attempt: number) => number
  protocol?: 2 | 3
  autoResubscribe?: boolean
}

function connect(target: string | RedisStoreConfig, node: NodeOptions, maxDelay: number): RedisClient {
  if (typeof target === 'string') return new Redis(target, node)
  if (target.kind === 'redis') return new Redis(target.url, node)
  const auth = {
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
  }
  switch (target.kind) {
    case 'sentinel':
      return new Redis({
        ...node,
        ...auth,
        sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
        name: target.name,
        db: target.db,
        // No failoverDetector: when its +switch-master arrives while a
        // reconnect is asking the sentinels, ioredis 6 rejects that connect
        // with "Connection is closed." and stops reconnecting for good. A
        // dead primary's socket closes by itself, and every reconnect asks
        // the sentinels for the current primary anyway.
        sentinelRetryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 10), maxDelay),
        sentinelCommandTimeout: node.commandTimeout!,
        ...(target.tls ? { tls: {}, enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
      })
    case 'cluster': {
      // A Cluster moves slots with MOVED, which ioredis follows; READONLY is not its answer to a failover.
      const { retryStrategy: _, enableOfflineQueue: __, reconnectOnError: ___, ...perNode } = node
      return new Cluster(
        target.nodes.map((n) => ({ host: n.host, port: n.port })),
        {
          enableOfflineQueue: false,
          clusterRetryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 10), maxDelay),
          redisOptions: { ...perNode, ...auth, ...(target.tls ? { tls: {} } : {}) },
        },
      )
    }
  }
}

/**
 * Resolves when the connection is ready, or after `timeoutMs` without
 * failing: a gateway whose Redis is down at startup still starts, reports
 * not-ready, and serves once Redis comes up.
 */
export function whenReady(client: RedisClient, timeoutMs = 2_000): Promise<void> {
  return client.status === 'ready' ? Promise.resolve() : eventOrTimeout(client, 'ready', timeoutMs)
}

/** Resolves on `event`, or after `timeoutMs`, whichever comes first; never rejects. */
export function eventOrTimeout(emitter: EventEmitter, event: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      emitter.off(event, done)
      resolve()
    }
    const timer = setTimeout(done, timeoutMs)
    emitter.once(event, done)
  })
}

/**
 * Closes a connection: `QUIT` lets replies in flight arrive, but waits on a
 * dead or frozen Redis, so it is bounded, by `timeoutMs` and by `stop` (the
 * shutdown's drain ending: past it nothing is waited for), and followed by
 * a disconnect. A Redis that has not answered it holds its connection open
 * (frozen, paused, partitioned): ioredis's disconnect waits 2 s more for
 * the socket to close (its `disconnectTimeout`), and the commands still
 * awaited failed only then, after the gateway had closed. Its socket is
 * destroyed instead, and they fail now.
 */
export async function closeRedisClient(
  client: RedisClient,
  timeoutMs = 1_000,
  stop?: AbortSignal,
): Promise<void> {
  let answered = false
  let timer: NodeJS.Timeout | undefined
  let stopped: (() => void) | undefined
  await Promise.race([
    client.quit().then(
      () => {
        answered = true
      },
      () => {},
    ),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs)
      stopped = () => resolve()
      if (stop?.aborted) resolve()
      else stop?.addEventListener('abort', stopped, { once: true })
    }),
  ])
  clearTimeout(timer)
  if (stopped) stop?.removeEventListener('abort', stopped)
  const nodes = client instanceof Cluster ? client.nodes() : [client]
  client.disconnect()
  // `stream` is ioredis's socket, absent before the first connect.
  if (!answered) for (const node of nodes) (node.stream as typeof node.stream | undefined)?.destroy()
}

/**
 * What the error replies a Redis gives while it is up but will not serve
 * mean to an operator, by their first word. Named so in the log line's
 * `cause`: as a `ReplyError` alone, a full Redis, a withdrawn ACL and a
 * replica looked alike, and like nothing in particular.
 */
const REPLY_ERRORS: Readonly<Record<string, string>> = {
  OOM: 'Redis answered OOM: used memory is over maxmemory and its policy (noeviction) refuses writes',
  NOPERM: "Redis answered NOPERM: the store's ACL user may not run this command or use this key",
  NOAUTH: 'Redis answered NOAUTH: the connection is not authenticated',
  WRONGPASS: "Redis answered WRONGPASS: the store's user name or password is refused",
  READONLY: 'Redis answered READONLY: the connection is to a replica, which takes no writes',
  LOADING: 'Redis answered LOADING: it is loading its dataset into memory',
  BUSY: 'Redis answered BUSY: a script or function has run past its time limit',
  MASTERDOWN: 'Redis answered MASTERDOWN: the replica has lost its link to the primary',
  MISCONF: 'Redis answered MISCONF: it cannot persist its data (a failed RDB save) and refuses writes',
  CLUSTERDOWN: 'Redis answered CLUSTERDOWN: the cluster does not serve this slot',
  TRYAGAIN: 'Redis answered TRYAGAIN: a slot is being migrated',
  NOREPLICAS: 'Redis answered NOREPLICAS: fewer replicas than min-replicas-to-write are connected',
}

/**
 * What ioredis's own errors, plain `Error`s by their message, mean: as a
 * `cause` each was `Error`, as a refused write's once was (`writeRefused`),
 * so a Redis too slow to answer (`DEBUG SLEEP`, `CLIENT PAUSE`, a long
 * script) read like any other failure.
 */
const DRIVER_ERRORS: Readonly<Record<string, string>> = {
  'Command timed out': 'Redis did not answer within the command timeout (session.storeTimeout)',
  "Stream isn't writeable and enableOfflineQueue options is false":
    'no connection to Redis: it is being made again',
  "Cluster isn't ready and enableOfflineQueue options is false":
    'no connection to the Redis Cluster: it is being made again',
  'Connection is closed.': 'the connection to Redis closed before it answered',
}

/**
 * The `cause` of a Redis error reply, by its first word (`OOM`, `NOPERM`,
 * …), never by the rest, which may quote a command or a script; of one of
 * ioredis's own errors, by what it means; undefined for anything else (a
 * connection error names itself by its code).
 */
export function redisCause(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined
  if (err.name !== 'ReplyError')
    return Object.hasOwn(DRIVER_ERRORS, err.message) ? DRIVER_ERRORS[err.message] : undefined
  const word = /^[A-Z]+(?=\s|$)/.exec(err.message)?.[0]
  if (word === undefined) return undefined
  return REPLY_ERRORS[word] ?? `Redis answered ${word}`
}

/**
 * Replies of a Redis that serves reads and refuses writes: full under
 * `noeviction`, unable to persist, a replica, short of the replicas
 * `min-replicas-to-write` asks for, or an ACL that refuses the script a
 * write is (`NOPERM` on `EVALSHA`, `-@scripting`) while it lets the read,
 * a plain command, through.
 */
const WRITES_REFUSED = new Set(['OOM', 'MISCONF', 'READONLY', 'NOREPLICAS', 'NOPERM'])

/** Whether `err` (a store failure or the driver's error) is a Redis that refused a write and may still serve reads. */
export function writeRefusedByRedis(err: unknown): boolean {
  return WRITES_REFUSED.has(replyWord(err) ?? '')
}

/**
 * The first word (`OOM`, `NOPERM`, …) of the error reply `err` is, or
 * caused (a store error's `cause`); undefined for anything but a reply.
 */
export function replyWord(err: unknown): string | undefined {
  const reply = err instanceof Error && err.name !== 'ReplyError' ? err.cause : err
  if (!(reply instanceof Error) || reply.name !== 'ReplyError') return undefined
  return /^[A-Z]+/.exec(reply.message)?.[0]
}

/** Wraps a Redis failure as the catalogue's 503, keeping the cause for logs. */
export function storeUnavailable(cause: unknown): StoreUnavailableError {
  if (cause instanceof StoreUnavailableError) return cause
  const reason = redisCause(cause)
  const err = new StoreUnavailableError(cause)
  return reason === undefined ? err : Object.assign(err, { reason })
}

/**
 * The catalogue's 503 for a write Redis took and the gateway will not count
 * (no replica confirmed it, no sentinel names its primary): `reason` is the
 * log line's `cause`. As a `cause`, an `Error` made for it was named by its
 * class alone, `Error`, as a dead connection is, and nothing in the line
 * told the refusal from an outage.
 */
export function writeRefused(reason: string): StoreUnavailableError {
  return Object.assign(new StoreUnavailableError(), { reason })
}

/** Runs a Redis call and turns any failure into a `StoreUnavailableError`. */
export async function guarded<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    throw storeUnavailable(err)
  }
}
