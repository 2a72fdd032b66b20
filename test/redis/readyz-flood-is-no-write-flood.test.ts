/**
 * `/readyz` is on the public port, and each one asked Redis whether it
 * refuses scripts or writes: `EVAL`, `EVALSHA` and a `SET` per primary,
 * beside its `PING`. Requests in flight together shared one check, but one
 * after another each made its own, so any client could make the gateway
 * write to Redis as fast as it could ask.
 */
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'

/** Calls of each command since the last `CONFIG RESETSTAT`, from `INFO commandstats`. */
async function calls(admin: Redis): Promise<Record<string, number>> {
  const info = await admin.info('commandstats')
  const found: Record<string, number> = {}
  for (const [, name, n] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) found[name!] = Number(n)
  return found
}

t.test(
  'a flood of /readyz, one after another or all at once, probes Redis at most once a second',
  async (t) => {
    const redis = await startRedis({ args: [] })
    t.teardown(() => redis.stop())
    const admin = new Redis(redis.url)
    t.teardown(() => admin.disconnect())
    const app = await buildTestApp(t, { store: redis.url, keyPrefix: redis.prefix, localCache: 0 })
    // The check a connect makes, done before counting begins.
    await app.gatehouse.stores.refusals!.check()
    await admin.config('RESETSTAT')

    // Long enough that answers a second old must be checked again.
    const started = performance.now()
    let asked = 0
    let ok = 0
    while (performance.now() - started < 2_500) {
      const ready = await app.inject({ url: '/readyz' })
      asked++
      if (ready.json().checks.store === 'ok') ok++
    }
    const all = await Promise.all(Array.from({ length: 200 }, () => app.inject({ url: '/readyz' })))
    ok += all.filter((ready) => ready.json().checks.store === 'ok').length
    asked += all.length
    const seconds = Math.ceil((performance.now() - started) / 1000)
    t.equal(ok, asked, `each of ${asked} /readyz says the store is ok`)
    const made = await calls(admin)
    t.ok((made.ping ?? 0) >= 1, `the flood reached Redis (${made.ping} PINGs)`)
    t.ok((made.set ?? 0) >= 1, 'a check older than a second is made again')
    t.ok(
      (made.set ?? 0) <= seconds + 1,
      `${made.set ?? 0} probe writes for ${asked} /readyz over ${seconds} s: at most one a second and one more`,
    )
    t.ok(
      (made.eval ?? 0) + (made.evalsha ?? 0) <= 2 * (seconds + 1),
      `${made.eval ?? 0} EVAL and ${made.evalsha ?? 0} EVALSHA: as few`,
    )
  },
)
