import t from 'tap'
import { parseStore } from '../../src/config/store-url.js'
import type { RedisStoreConfig } from '../../src/config/types.js'
import { SentinelPrimary } from '../../src/redis/sentinel-primary.js'
import { REFUSED_PORT } from '../helpers/ports.js'
import { startLoneSentinel, startRedisSentinel } from '../helpers/redis-topology.js'

type SentinelStore = Extract<RedisStoreConfig, { kind: 'sentinel' }>

const redis = await startRedisSentinel()
t.teardown(() => redis.stop())
const store = parseStore(redis.url) as SentinelStore

t.test('names the primary the sentinels hand out, and no other node', async (t) => {
  const primary = new SentinelPrimary(store)
  t.teardown(() => primary.close())
  await primary.whenReady(5_000)
  t.equal(await primary.names({ host: '127.0.0.1', port: redis.primary.port }), true, 'the primary')
  t.equal(await primary.names({ host: '127.0.0.1', port: redis.replica.port }), false, 'not its replica')
  t.equal(await primary.names({ host: '127.0.0.2', port: redis.primary.port }), false, 'not another host')
})

t.test('a sentinel that does not answer is skipped; with none answering, no node is named', async (t) => {
  const dead = { host: '127.0.0.1', port: REFUSED_PORT }
  const primary = new SentinelPrimary({ ...store, sentinels: [dead, ...store.sentinels] })
  t.teardown(() => primary.close())
  // Bounded: the dead one never gets ready; the live one is by then.
  await primary.whenReady(1_000)
  t.equal(await primary.names({ host: '127.0.0.1', port: redis.primary.port }), true, 'the next one answers')

  const none = new SentinelPrimary({ ...store, sentinels: [dead] })
  t.teardown(() => none.close())
  t.equal(
    await none.names({ host: '127.0.0.1', port: redis.primary.port }),
    undefined,
    'neither named nor replaced: a write no sentinel vouches for is not counted, and its connection stays',
  )
})

// ioredis asks the next sentinel when one answers null (it does not monitor
// that name: just deployed, or reset), and so connects to the primary; this
// took the null for "another primary", so while the primary had no replica
// every write answered 503 and dropped its connections, for as long as
// that sentinel came first in the list.
t.test('a sentinel that does not know the name is skipped, as ioredis skips it', async (t) => {
  const lone = await startLoneSentinel()
  t.teardown(() => lone.stop())
  const primary = new SentinelPrimary({
    ...store,
    sentinels: [{ host: '127.0.0.1', port: lone.port }, ...store.sentinels],
  })
  t.teardown(() => primary.close())
  await primary.whenReady(5_000)
  t.equal(
    await primary.names({ host: '127.0.0.1', port: redis.primary.port }),
    true,
    'the next one names the primary',
  )
  t.equal(await primary.names({ host: '127.0.0.1', port: redis.replica.port }), false, 'and not its replica')

  const alone = new SentinelPrimary({ ...store, sentinels: [{ host: '127.0.0.1', port: lone.port }] })
  t.teardown(() => alone.close())
  await alone.whenReady(5_000)
  t.equal(
    await alone.names({ host: '127.0.0.1', port: redis.primary.port }),
    undefined,
    'one that knows no primary by that name says nothing of it',
  )
})
