/**
 * The shutdown's last pass stops at the drain's end. An owed logout's try
 * under way then, against a store that holds its connection open without
 * answering (frozen, not down), stops waiting on the store with it, and
 * the stores' close waits on such a store no longer either: the close ends
 * within the drain, and the store command the try had sent fails by then,
 * not 2 s after the close (ioredis's own wait for a socket a frozen Redis
 * never closes). Until 2026-12-08 the try ignored the stop, and the close
 * waited on the frozen Redis's QUIT twice past the drain's end: 3.5 s for a
 * 2 s drain, which start.ts cuts off with exit 1. What the try did not
 * carry out stays owed: never counted done or lost for the cut, dropped
 * with the rest as the gateway closes, and said to be; nothing in the
 * store, once it runs again, says the token was carried out.
 */
import { performance } from 'node:perf_hooks'
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

const LOST = 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'
/** As a SIGTERM's drain (start.ts): it exits with 1 once this is out. */
const DRAIN = 2_000 // ms

t.test("an owed logout's try at a frozen store does not hold the close past the drain", async (t) => {
  if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
  const redis = await startRedis()
  t.teardown(async () => {
    redis.resume()
    await redis.stop()
  })
  const logs = new LogLines()
  const stack = await startReloadable(t, (upstream) => [route('/api', upstream)], {
    accessTokenTtl: 600,
    backchannelLogout: true,
    watch: false,
    // A store timeout far past the drain: only the drain can end the try in time.
    input: { store: redis.url, keyPrefix: redis.prefix, logLevel: 'info', storeTimeout: 20_000 },
    logStream: logs.stream,
  })
  const base = stack.url
  const app = stack.running.app
  const alice = await login(base, { user: 'alice' })

  const aliceKey = redisKeys(redis.prefix).session(sessionRefOf(app, alice.jar.get(base, 'gatehouse')!).id)

  // Each try of the owed logout claims its token first: counted, and told when it is answered.
  const replay = app.gatehouse.stores.replay
  const claim = replay.claim.bind(replay)
  let claims = 0
  let answered = 0
  let lastAnswered = 0
  const waiting = new Map<number, () => void>()
  const claimed = (n: number) =>
    new Promise<void>((resolve) => (claims >= n ? resolve() : waiting.set(n, resolve)))
  replay.claim = (key, holdMs) => {
    claims++
    waiting.get(claims)?.()
    return claim(key, holdMs).finally(() => {
      answered++
      lastAnswered = performance.now()
    })
  }

  await redis.kill()
  const delivery = await stack.idp.endSession('alice')
  t.equal(
    delivery.failed,
    1,
    'the IdP delivered once, was answered with an error, and will not send it again',
  )
  await logs.seen('the logout owed', (line) => line.code === 'GATEHOUSE_BACKCHANNEL_LOGOUT_OWED')
  // The delivery's own claim, then the tries 0.25, 0.75, 1.75 and 3.75 s
  // on, each finding the store away: the next would wait 4 s.
  await claimed(5)
  await redis.restart()
  await pollUntil(async () => (await jarFetch(new CookieJar(), `${base}/readyz`)).status === 200)
  // The store is back, then answers nothing: its connection stays open.
  redis.freeze()
  const before = claims

  // As a SIGTERM shuts it down (start.ts): 2 s, the last pass cut off at 1.5 s.
  app.gatehouse.lasting.drain.start(DRAIN)
  const stopping = performance.now()
  await stack.running.close()
  const took = performance.now() - stopping

  t.ok(claims > before, 'the last pass tried the owed logout')
  t.ok(took < DRAIN, `closed within the drain (${Math.round(took)} ms of ${DRAIN})`)
  // Its socket destroyed as the stores close, the command still awaited fails at once.
  await pollUntil(async () => answered === claims, 5_000, "the try's claim still awaited after the close")
  const ended = lastAnswered - stopping
  t.ok(ended < DRAIN, `the try's store command ended within the drain too (${Math.round(ended)} ms)`)
  t.match(
    logs.lines.find((line) => line.code === LOST),
    { reason: 'closed', owed: 1 },
    'the logout not carried out stayed owed to the close, which dropped it, and said so',
  )
  t.notOk(
    logs.lines.some((line) => line.code === LOST && line.reason !== 'closed'),
    'never lost for being cut off',
  )

  // The store runs again, and reads what was sent to it while it was frozen.
  redis.resume()
  const probe = new Redis(redis.url)
  t.teardown(() => probe.quit())
  t.equal(await probe.exists(aliceKey), 1, "alice's session was not ended: the logout was not carried out")
  const seen = await probe.keys(`${redis.prefix}seen:*`)
  const noted = await Promise.all(seen.map((key) => probe.get(key)))
  t.notOk(
    noted.some((value) => value === 'done' || value === 'owed'),
    `nothing says the token was carried out (${noted.join(', ') || 'no key'}): a resend, or another instance, still carries it out`,
  )
})
