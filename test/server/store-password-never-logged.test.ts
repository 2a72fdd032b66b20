/**
 * A Redis password written as `?password=` (which ioredis reads, and the
 * gateway authenticates with) stays out of every line that shows the store:
 * the startup line, a reload refused because the store changed, and the
 * warning when the store goes away.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { configText, LogLines, startReloadable } from '../helpers/reloadable.js'

const PASSWORD = 'Qu3ryPassw0rd-never-logged'

t.test('a query-string Redis password is hidden in the startup, reload and outage lines', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'sets a password on a redis-server of our own')
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.url)
  await admin.config('SET', 'requirepass', PASSWORD)
  admin.disconnect()

  const log = new LogLines()
  const store = `${redis.url}?password=${PASSWORD}`
  const shown = `${redis.url}?password=***`
  const stack = await startReloadable(
    t,
    (upstream) => [route('/api/public', upstream, { token: 'none', csrf: false })],
    {
      logStream: log.stream,
      input: { logLevel: 'info', store, keyPrefix: redis.prefix },
    },
  )
  const ready = await fetch(`${stack.url}/readyz`)
  t.equal(ready.status, 200, 'the gateway authenticated with the password from the query')

  const startup = await log.seen('the startup line', (l) => /^gatehouse listening/.test(l.msg))
  t.equal(startup.store, shown)

  stack.configMap.write(configText({ ...stack.input, store: `${store}x` }))
  const refused = await log.seen('the store refusal', (l) => l.path === 'session.store')
  t.match(refused.msg, `cannot change without a restart (the session store is connected once, at start)`)
  t.match(refused.msg, `"${shown}" is running`)

  await redis.kill()
  const down = await log.seen('the outage line', (l) => l.code === 'GATEHOUSE_STORE_DOWN')
  t.equal(down.store, shown)

  t.same(
    log.lines.filter((l) => JSON.stringify(l).includes(PASSWORD)).map((l) => l.msg),
    [],
    'no line holds the password',
  )
})
