/**
 * A Redis outage says so in the log: one warn line when the store goes,
 * one info line with the outage's length when it is back, however many
 * requests failed in between and however many times ioredis retried.
 */
import t from 'tap'
import { cacheHeardStoreOutage } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { type LogLine, startObservedStack } from '../helpers/observed-stack.js'
import { startRedis } from '../helpers/redis.js'
import { pollUntil } from '../helpers/within.js'

/** Resolves with the first line logged from now on that `match` accepts; rejects after 10 s without one. */
function nextLine(lines: LogLine[], match: (line: LogLine) => boolean): Promise<LogLine> {
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error('no such line within 10 s')), 10_000)
    const push = lines.push.bind(lines)
    lines.push = (...added: LogLine[]) => {
      const found = added.find(match)
      if (found) {
        lines.push = push
        clearTimeout(deadline)
        resolve(found)
      }
      return push(...added)
    }
  })
}

t.test('Redis goes away for a while: one warn line, then one info line with the outage length', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const stack = await startObservedStack(t, { config: { store: redis.url, keyPrefix: redis.prefix } })
  const base = stack.gateway.url
  const { jar } = await login(base)
  t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200)

  const wentDown = nextLine(stack.lines, (l) => l.code === 'GATEHOUSE_STORE_DOWN')
  await redis.kill()
  t.match(await wentDown, {
    level: 40,
    store: `redis://127.0.0.1:${redis.port}/0`,
    msg: /^session store unreachable \(.+\): requests that need it answer 503 until it is back$/,
    reason: /^(connection closed|ECONNRESET|ECONNREFUSED 127\.0\.0\.1:\d+)/,
  })
  // The line comes from the store's own connection; the local session
  // cache hears the outage on another, in no promised order, and may serve
  // its copy (200) until it does.
  await cacheHeardStoreOutage(stack.gateway.app)
  for (let i = 0; i < 5; i++) t.equal((await apiCall(jar, `${base}/api/orders`)).status, 503)

  const cameBack = nextLine(stack.lines, (l) => l.code === 'GATEHOUSE_STORE_RECOVERED')
  await redis.restart()
  const back = await cameBack
  t.match(back, { level: 30, msg: /^session store reachable again after \d+ ms$/ })
  t.ok((back.outageMs as number) > 0, `outageMs ${back.outageMs}`)
  await pollUntil(async () => (await apiCall(jar, `${base}/api/orders`)).status === 200)
  t.equal(stack.lines.filter((l) => l.code === 'GATEHOUSE_STORE_DOWN').length, 1, 'one line for the outage')
  t.equal(stack.lines.filter((l) => l.code === 'GATEHOUSE_STORE_RECOVERED').length, 1)

  await stack.gateway.close()
  t.equal(
    stack.lines.filter((l) => l.code === 'GATEHOUSE_STORE_DOWN').length,
    1,
    'closing the gateway is no outage',
  )
})
