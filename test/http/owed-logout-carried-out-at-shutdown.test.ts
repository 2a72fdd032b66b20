/**
 * A back-channel logout the store failed to carry out is owed, in the
 * instance's memory only. A shutdown dropped it
 * (GATEHOUSE_BACKCHANNEL_LOGOUT_LOST, reason `closed`), even with the
 * store back and the next try seconds away: the IdP sends its logout
 * token once, so after a restart (a rolling upgrade) the user's sessions
 * ran on. The owed revocations got a last pass at shutdown; the owed
 * logouts did not, as their route's close hook took its attempt away
 * before the pass. A shutdown now tries them once more too, within the drain.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { redisKeys } from '../../src/redis/keys.js'
import { sessionRefOf } from '../helpers/app.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { jarFetch, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { LogLines, startReloadable } from '../helpers/reloadable.js'
import { pollUntil } from '../helpers/within.js'

const CARRIED_OUT = 'back-channel logout carried out once the store was back'
const LOST = 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'

t.test('a logout owed since a store outage is carried out as the gateway shuts down', async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const logs = new LogLines()
  const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], {
    accessTokenTtl: 600,
    backchannelLogout: true,
    watch: false,
    input: { store: redis.url, keyPrefix: redis.prefix, logLevel: 'info' },
    logStream: logs.stream,
  })
  const base = stack.url
  const app = stack.running.app
  const alice = await login(base, { user: 'alice' })
  const bob = await login(base, { user: 'bob' })
  const keyOf = (jar: CookieJar) =>
    redisKeys(redis.prefix).session(sessionRefOf(app, jar.get(base, 'gatehouse')!).id)

  // Each try of the owed logout claims its token first: counted, on the real store.
  const replay = app.gatehouse.stores.replay
  const claim = replay.claim.bind(replay)
  let claims = 0
  const waiting = new Map<number, () => void>()
  const claimed = (n: number) =>
    new Promise<void>((resolve) => (claims >= n ? resolve() : waiting.set(n, resolve)))
  replay.claim = (key, holdMs) => {
    claims++
    waiting.get(claims)?.()
    return claim(key, holdMs)
  }

  await redis.kill()
  const delivery = await stack.idp.endSession('alice')
  t.same(
    { delivered: delivery.delivered, failed: delivery.failed },
    { delivered: 0, failed: 1 },
    'the IdP delivered once, was answered with an error, and will not send it again',
  )
  await logs.seen('the logout owed', (line) => line.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_OWED')
  // The delivery's own claim, then the tries 0.25, 0.75, 1.75 and 3.75 s
  // on, each finding the store away: the next would wait 4 s.
  await claimed(5)
  await redis.restart()
  await pollUntil(async () => (await jarFetch(new CookieJar(), `${base}/readyz`)).status === 200)
  const aliceKey = keyOf(alice.jar)
  const bobKey = keyOf(bob.jar)

  // As a SIGTERM shuts it down (start.ts).
  app.gatehouse.lasting.drain.start(5_000)
  await stack.running.close()

  const probe = new Redis(redis.url)
  t.teardown(() => probe.quit())
  t.equal(await probe.exists(aliceKey), 0, "alice's session ended in the store")
  t.equal(await probe.exists(bobKey), 1, "bob's session stays")
  t.ok(
    logs.lines.some((line) => line.msg === CARRIED_OUT),
    'the log says the logout was carried out',
  )
  t.notOk(
    logs.lines.some((line) => line.code === LOST),
    'nothing is lost',
  )
})
