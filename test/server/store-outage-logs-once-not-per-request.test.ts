import t from 'tap'
import { cacheHeardStoreOutage } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { startRedis } from '../helpers/redis.js'

// The store-down line is written once per outage, but the error handler
// also wrote a warning for every request the outage answered 503: a
// client calling at line rate wrote a line each, while errors.md said
// "not one per request".
t.test('while the store is down, requests answered 503 write one line, not one each', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const stack = await startObservedStack(t, { config: { store: redis.url, keyPrefix: redis.prefix } })
  const { jar } = await login(stack.gateway.url)
  t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders`)).status, 200)

  await redis.kill()
  await cacheHeardStoreOutage(stack.gateway.app)
  const answers = await Promise.all(
    Array.from({ length: 100 }, () => apiCall(jar, `${stack.gateway.url}/api/orders`)),
  )
  t.same(new Set(answers.map((a) => a.status)), new Set([503]), 'every request is still answered 503')
  const unavailable = stack.lines.filter((line) => line.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE')
  t.equal(unavailable.length, 1, 'one line for 100 requests')
  t.match(unavailable[0], { level: 40, msg: 'session_store_unavailable' })
  t.equal(
    stack.lines.filter((line) => line.code === 'GATEHOUSE_STORE_DOWN').length,
    1,
    'beside the one store-down line',
  )
  t.match(await stack.metrics('gatehouse_session_store_errors_total'), [
    'gatehouse_session_store_errors_total 100',
  ])
  await redis.restart()
})
