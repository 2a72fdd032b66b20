/**
 * The shutdown's last pass stops at the drain's end. An owed logout's try
 * under way then, against a store that holds its connection open without
 * answering (frozen, not down), is not waited for: the close ends within
 * the drain and a bound, not at the store's timeout, what was not carried
 * out is said to be lost, and the store command still awaited fails as
 * Redis is closed.
 */
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { jarFetch, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { LogLines, startReloadable } from '../helpers/reloadable.js'
import { pollUntil } from '../helpers/within.js'

const LOST = 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'

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
  await login(base, { user: 'alice' })

  // Each try of the owed logout claims its token first: counted, and told when it is answered.
  const replay = app.gatehouse.stores.replay
  const claim = replay.claim.bind(replay)
  let claims = 0
  let answered = 0
  const waiting = new Map<number, () => void>()
  const claimed = (n: number) =>
    new Promise<void>((resolve) => (claims >= n ? resolve() : waiting.set(n, resolve)))
  replay.claim = (key, holdMs) => {
    claims++
    waiting.get(claims)?.()
    return claim(key, holdMs).finally(() => answered++)
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
  app.gatehouse.lasting.drain.start(2_000)
  const stopping = performance.now()
  await stack.running.close()
  const took = performance.now() - stopping

  t.ok(claims > before, 'the last pass tried the owed logout')
  t.ok(
    took < 4_000,
    `closed within the drain and a bound (${Math.round(took)} ms), not at the store's timeout`,
  )
  // Closing Redis fails the command still awaited (its connection is dropped
  // after a bounded QUIT): within seconds, not at the store's 20 s timeout.
  await pollUntil(async () => answered === claims, 5_000, "the try's claim still awaited after the close")
  t.pass(`the try's claim ended ${Math.round(performance.now() - stopping - took)} ms after the close`)
  t.match(
    logs.lines.find((line) => line.code === LOST),
    { reason: 'closed', owed: 1 },
    'the logout not carried out is dropped, and said to be',
  )
})
