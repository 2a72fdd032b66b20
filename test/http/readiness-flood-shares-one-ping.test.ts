import { Redis } from 'ioredis'
import t from 'tap'
import { startRedis } from '../helpers/redis.js'
import { startStack } from '../helpers/stack.js'

/** How many PINGs the server has run, from its own command statistics. */
async function pings(probe: Redis): Promise<number> {
  const stats = await probe.info('commandstats')
  return Number(/cmdstat_ping:calls=(\d+)/.exec(stats)?.[1] ?? 0)
}

// /readyz is public, and each request sent the session store a PING of
// its own: a flood of readiness checks was a flood of commands at the store.
t.test('concurrent /readyz requests share one PING to the store', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const stack = await startStack(t, { config: { store: redis.url, keyPrefix: redis.prefix } })
  const probe = new Redis(redis.url)
  t.teardown(() => probe.quit())
  const before = await pings(probe)
  const answers = await Promise.all(
    Array.from({ length: 200 }, () => stack.gateway.app.inject({ method: 'GET', url: '/readyz' })),
  )
  t.same(new Set(answers.map((a) => a.statusCode)), new Set([200]), 'every one is answered: ready')
  const sent = (await pings(probe)) - before
  t.ok(sent <= 5, `${sent} PINGs for 200 concurrent checks`)

  await redis.kill()
  const down = await stack.gateway.app.inject({ method: 'GET', url: '/readyz' })
  t.equal(down.statusCode, 503, 'a check after the store went away is not answered from a shared earlier one')
  t.match(down.json(), { checks: { store: 'The session store is unavailable. Retry later.' } })
  await redis.restart()
})
