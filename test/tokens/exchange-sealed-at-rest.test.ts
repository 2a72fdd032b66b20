import t from 'tap'
import { startAudienceStack } from '../helpers/audience-stack.js'
import { apiCall } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { dumpKeys } from '../helpers/redis-dump.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

t.test('an exchanged token is kept sealed in the shared store, like every token', async (t) => {
  const keyPrefix = `${redis.prefix}exchange-at-rest:`
  const stack = await startAudienceStack({ exchange: {}, redisUrl: redis.url, keyPrefix })
  t.teardown(() => stack.close())
  const [url] = stack.urls
  t.equal((await apiCall(stack.jar, `${url}/ledger/x`)).status, 200)
  t.equal((await apiCall(stack.jar, `${url}/api/x`)).status, 200)
  const exchanged = stack.upstreams.ledger!.requests[0]!.authorization!.slice(7)
  const subject = stack.upstreams.api.requests[0]!.authorization!.slice(7)
  t.equal(stack.idp.stats.tokenExchanges, 1)
  const dump = await dumpKeys(redis.url, keyPrefix)
  t.ok(dump.size > 0, `${dump.size} keys dumped`)
  for (const [key, value] of dump) {
    t.notOk(value.includes(exchanged), `${key}: not the exchanged token`)
    t.notOk(value.includes(subject), `${key}: not its subject`)
  }
})
