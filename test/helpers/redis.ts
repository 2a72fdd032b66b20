import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { createRedisStores } from '../../src/server/redis-stores.js'
import { type TestConfigInput, testConfig } from './gateway.js'
import { addressInUse, onFreePort } from './ports.js'
import { pollUntil } from './within.js'

export interface TestRedis {
  readonly url: string
  readonly port: number
  /** A key prefix of its own, so tests sharing a REDIS_URL never collide. */
  readonly prefix: string
  /** Kills the server (connections refused) until `restart`; its data survives via the AOF. */
  kill(): Promise<void>
  /**
   * Starts the server again on the same port, with the data it had. The
   * port is unbound while the server is down, so another process could take
   * it in between; then this throws EADDRINUSE rather than talk to a stranger.
   */
  restart(): Promise<void>
  /** Freezes the server (connections hang) until `resume`. */
  freeze(): void
  resume(): void
  /** Stops our own server, or deletes this prefix's keys on a shared one. */
  stop(): Promise<void>
}

let counter = 0

/**
 * A real redis-server for one test file, on a free port, with an
 * append-only file so a kill and restart keeps its data, and `args` after
 * the helper's own; or, when REDIS_URL is set and no `args` are given, that server with a unique prefix (and no fault
 * injection, which needs a server of our own).
 */
export async function startRedis(options: { readonly args?: readonly string[] } = {}): Promise<TestRedis> {
  const prefix = `gh-test-${process.pid}-${++counter}:`
  // A server started with arguments of its own is always ours: a shared one is configured otherwise.
  if (process.env.REDIS_URL && !options.args) {
    const url = process.env.REDIS_URL
    const unsupported = async () => {
      throw new Error('fault injection needs a redis-server started by the tests; unset REDIS_URL')
    }
    return {
      url,
      port: Number(new URL(url).port || 6379),
      prefix,
      kill: unsupported,
      restart: unsupported,
      freeze() {},
      resume() {},
      stop: () => deletePrefix(url, prefix),
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-redis-'))
  let port = 0
  let url = ''
  let child: ChildProcess | undefined

  const launch = async () => {
    const proc = spawn(
      process.env.REDIS_SERVER ?? 'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        dir,
        ...(options.args ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    child = proc
    let output = ''
    proc.stdout!.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-2_000)
    })
    proc.stderr!.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-2_000)
    })
    const failed = new Promise<never>((_, reject) => {
      proc.once('error', (err) =>
        reject(
          new Error(
            `cannot start redis-server (${err.message}); install it with apt-get install redis-server`,
          ),
        ),
      )
      proc.once('exit', (code) => {
        const message = `redis-server exited with ${code}: ${output.slice(-500)}`
        reject(/Address already in use/i.test(output) ? addressInUse(message) : new Error(message))
      })
    })
    failed.catch(() => {})
    // Our own process must answer: another server on this port would answer PING too.
    await Promise.race([failed, untilPong(url, proc.pid)])
  }

  const kill = async () => {
    const proc = child
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    proc.kill('SIGCONT')
    await new Promise<void>((resolve) => {
      proc.removeAllListeners('exit')
      proc.once('exit', () => resolve())
      proc.kill('SIGKILL')
    })
  }
  try {
    await onFreePort(async (candidate) => {
      port = candidate
      url = `redis://127.0.0.1:${port}/0`
      await launch()
    })
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  return {
    url,
    port,
    prefix,
    kill,
    restart: launch,
    freeze: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    async stop() {
      await kill()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** The ACL user `startRedisWithAclUser` makes, and its password, which no log line may quote. */
export const ACL_USER = 'gatehouse'
export const ACL_PASSWORD = 'an-acl-password'

/** A redis-server with an ACL user the gateway connects as, for tests of what an ACL refuses. */
export interface AclRedis {
  readonly redis: TestRedis
  /** The `default` user, to change `ACL_USER`'s rules while the gateway runs. */
  readonly admin: Redis
  /** `session.store`, connecting as `ACL_USER`. */
  readonly store: string
}

/**
 * A redis-server of the test's own (`args`, as `startRedis` takes them)
 * with `ACL_USER` on, its password, and `rules`; it stops, and `admin`
 * disconnects, when `t` ends.
 */
export async function startRedisWithAclUser(
  t: Test,
  rules: readonly string[],
  args: readonly string[] = [],
): Promise<AclRedis> {
  const redis = await startRedis({ args })
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  await admin.call('ACL', 'SETUSER', ACL_USER, 'on', `>${ACL_PASSWORD}`, ...rules)
  return { redis, admin, store: redis.url.replace('redis://', `redis://${ACL_USER}:${ACL_PASSWORD}@`) }
}

/**
 * The rules of docs/deployment.md's `ACL SETUSER` line, for `prefix` in
 * place of the default one, and with the line's additions for a Cluster
 * when `cluster` is set: tests take the ACL from the document, so the two
 * cannot drift.
 */
export function documentedAclRules(prefix: string, options: { cluster?: boolean } = {}): string[] {
  const doc = readFileSync(new URL('../../docs/deployment.md', import.meta.url), 'utf8')
  const line = doc.split('\n').find((l) => l.startsWith(`ACL SETUSER ${ACL_USER} `))
  if (line === undefined) throw new Error('docs/deployment.md gives no ACL SETUSER line')
  const rules = line
    .split(' ')
    .slice(3)
    .filter((rule) => rule !== 'on' && !rule.startsWith('>'))
    .map((rule) => rule.replace('gatehouse:', prefix))
  if (!options.cluster) return rules
  const addition = /On a Cluster add ((?:`[^`]+`\s*)+)/.exec(doc.replace(/\s+/g, ' '))
  if (addition === null) throw new Error('docs/deployment.md names no additions for a Cluster')
  return [...rules, ...addition[1]!.split(/[`\s]+/).filter((rule) => rule !== '')]
}

/**
 * Resolves once `client` has been answered an EXISTS of `key`: a lock
 * waiter's look at its lock (redis-lock.ts), which no event announces.
 * The command still goes to Redis; only its answer is watched.
 */
export function existsAnswered(client: Pick<Redis, 'exists'>, key: string): Promise<void> {
  const exists = client.exists
  return new Promise((resolve) => {
    client.exists = ((...args: [string]) => {
      const answer = (exists as (...keys: string[]) => Promise<number>).apply(client, args)
      if (args[0] === key) {
        client.exists = exists
        answer.then(
          () => resolve(),
          () => resolve(),
        )
      }
      return answer
    }) as Redis['exists']
  })
}

/** Whether a lazy, non-retrying probe connects and gets PONG; it is disconnected either way. */
export async function answersPing(probe: Redis): Promise<boolean> {
  probe.on('error', () => {})
  try {
    await probe.connect()
    return (await probe.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    probe.disconnect()
  }
}

/**
 * Whether a lazy, non-retrying probe connects and the server is process
 * `pid`; it is disconnected either way.
 */
export async function servedBy(probe: Redis, pid: number | undefined): Promise<boolean> {
  probe.on('error', () => {})
  try {
    await probe.connect()
    return new RegExp(`^process_id:${pid}\\r?$`, 'm').test(await probe.info('server'))
  } catch {
    return false
  } finally {
    probe.disconnect()
  }
}

/** Waits until process `pid` answers at `url`, within a bounded deadline. */
async function untilPong(url: string, pid: number | undefined, deadlineMs = 10_000): Promise<void> {
  await pollUntil(
    () =>
      servedBy(
        new Redis(url, {
          lazyConnect: true,
          connectTimeout: 500,
          commandTimeout: 500,
          maxRetriesPerRequest: 0,
          enableOfflineQueue: false,
          retryStrategy: () => null,
        }),
        pid,
      ),
    deadlineMs,
  )
}

async function deletePrefix(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  try {
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      if (keys.length > 0) await client.unlink(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    client.disconnect()
  }
}

/**
 * The gateway's stores on the Redis at `store`, under `keyPrefix`, with no
 * gateway around them (no IdP, no routes) and `config` beside; closed when
 * `t` ends.
 */
export async function redisStoresOn(
  t: Test,
  store: string,
  keyPrefix: string,
  config: Partial<TestConfigInput> = {},
) {
  const stores = await createRedisStores(
    testConfig({ port: 1, issuer: 'http://127.0.0.1:1', store, keyPrefix, routes: [], ...config }),
    Date.now,
  )
  t.teardown(() => stores.close())
  return stores
}
