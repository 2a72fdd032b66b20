import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { buildTestApp } from './app.js'
import { awaitedLog } from './awaited-log.js'
import { TestClock } from './gateway.js'
import { apiCall, login } from './login.js'
import { startRedis } from './redis.js'
import { type Stack, type StackOptions, startStack } from './stack.js'

/** One JSON log line of the gateway. */
export interface LogLine {
  readonly level: number
  readonly msg: string
  readonly [field: string]: unknown
}

export interface ObservedStack extends Stack {
  readonly clock: TestClock
  /** Every line the gateway logged, at `info` and above, parsed. */
  readonly lines: LogLine[]
  /** The `/metrics` lines whose name starts with `prefix`. */
  metrics(prefix: string): Promise<string[]>
}

/** A stack on a hand-moved clock, whose log lines and metrics the test can read. */
export async function startObservedStack(t: Test, options: StackOptions = {}): Promise<ObservedStack> {
  const clock = new TestClock()
  const lines: LogLine[] = []
  const stack = await startStack(t, {
    ...options,
    config: { logLevel: 'info', ...options.config },
    gateway: {
      now: clock.now,
      logStream: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
      ...options.gateway,
    },
  })
  return {
    ...stack,
    clock,
    lines,
    async metrics(prefix) {
      const text = await stack.gateway.app.gatehouse.metrics.registry.metrics()
      return text.split('\n').filter((l) => l.startsWith(prefix))
    },
  }
}

/**
 * An observed stack on a redis-server of its own started with `args`, with
 * no local session cache (every request reads Redis), an admin connection
 * to change that server under the gateway, and a browser signed in whose
 * first API call was served. Everything is closed when `t` ends.
 */
export async function signedInOnItsOwnRedis(t: Test, args: readonly string[] = []) {
  const redis = await startRedis({ args })
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const stack = await startObservedStack(t, {
    config: { store: redis.url, keyPrefix: redis.prefix, localCache: 0 },
  })
  const base = stack.gateway.url
  const { jar } = await login(base)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'signed in')
  return { redis, admin, stack, base, jar }
}

/**
 * A gateway app on `store` (a Cluster's URL) with no IdP and no local
 * cache, logging at `info` to `log`, and what its `/readyz` says of the
 * store: with no IdP, `/readyz` is 503 whatever the store, and
 * `checks.store` is what the store is.
 */
export async function storeReadiness(t: Test, store: string) {
  const log = awaitedLog()
  const app = await buildTestApp(
    t,
    { store, keyPrefix: 'gh:', localCache: 0, logLevel: 'info' },
    { logStream: log.logStream },
  )
  const readStore = async () =>
    String((await app.inject({ url: '/readyz' })).json<{ checks: { store: string } }>().checks.store)
  return { app, log, readStore }
}
