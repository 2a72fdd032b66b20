/**
 * `gatehouse_redis_refusing` is read from Redis on scrape. A scrape that
 * cannot reach Redis keeps the values last read, and still answers: the
 * outage has signals of its own (`/readyz`, the store's log lines), and a
 * scrape that failed would take every other figure of the process with it,
 * while one that read 0 would clear a refusal alert nobody fixed.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { start } from '../../src/server/start.js'
import { UNREACHABLE_ISSUER } from '../helpers/app.js'
import { testConfig } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { pollUntil } from '../helpers/within.js'

t.test('a scrape while Redis is down answers 200 with the refusal last read', async (t) => {
  const redis = await startRedis({ args: ['--maxmemory-policy', 'noeviction'] })
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: false })
  await admin.connect()
  t.teardown(() => admin.disconnect())
  const gateway = await start(
    testConfig({
      port: 0,
      issuer: UNREACHABLE_ISSUER,
      routes: [],
      store: redis.url,
      keyPrefix: redis.prefix,
      localCache: 0,
    }),
  )
  t.teardown(() => gateway.close())
  const scrape = async () => {
    const answer = await fetch(gateway.metricsUrl!)
    const lines = (await answer.text()).split('\n').filter((l) => l.startsWith('gatehouse_redis_refusing{'))
    return { status: answer.status, lines }
  }
  const full = 'gatehouse_redis_refusing{refusal="full"} 1'

  await admin.config('SET', 'maxmemory', '1')
  await pollUntil(async () => (await scrape()).lines.includes(full), 5_000, 'the full Redis never showed')
  admin.disconnect()

  await redis.kill()
  // Until a check of the last second no longer serves, a scrape reads no
  // Redis at all; after that, each one asks it, and is refused.
  const refusals = gateway.app.gatehouse.stores.refusals!
  await pollUntil(
    () =>
      refusals.recent().then(
        () => false,
        () => true,
      ),
    5_000,
    'a refusal check still succeeded with Redis killed',
  )
  const down = await scrape()
  t.equal(down.status, 200, 'the scrape answers')
  t.match(down.lines, [full], 'and the gauge keeps the refusal it last read')
  const ready = (await (await fetch(`${gateway.url}/readyz`)).json()) as { checks: { store: string } }
  t.not(ready.checks.store, 'ok', '/readyz is where the outage shows')

  // CONFIG SET is not kept across a restart: Redis comes back with room.
  await redis.restart()
  let back = down
  await pollUntil(async () => {
    back = await scrape()
    return !back.lines.includes(full)
  }, 10_000)
  t.match(
    back.lines,
    ['gatehouse_redis_refusing{refusal="full"} 0'],
    'read again once Redis is back, with room',
  )
})
