/**
 * A logout token held while its issuer's keys could not be read is tried
 * once more as the gateway shuts down. Verified then, but carried out
 * against a store that holds its connection open without answering (frozen,
 * not down), the try ignored the drain's end: its store call was awaited
 * past the last pass, the token, verified, was dropped as "unverified" with
 * what the app held as it closed, and the store's answer, when the close
 * failed it, was owed to a queue already closed, silently. The drain's end
 * now ends the wait: what was not carried out is owed, and dropped with the
 * rest of what is owed, said to be; the close ends within the drain.
 */
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import t from 'tap'
import { redisKeys } from '../../src/redis/keys.js'
import { sessionRefOf } from '../helpers/app.js'
import { login } from '../helpers/login.js'
import { postLogoutToken } from '../helpers/logout.js'
import { startRedis } from '../helpers/redis.js'
import { LogLines } from '../helpers/reloadable.js'
import { startTwoIdps } from '../helpers/two-idps.js'
import { pollUntil } from '../helpers/within.js'

const LOST = 'GATEHOUSE_BACKCHANNEL_LOGOUT_LOST'
/** As a SIGTERM's drain (start.ts): it exits with 1 once this is out. */
const DRAIN = 2_000 // ms

t.test(
  "a held token's carrying out at a frozen store stops at the drain's end, and stays owed",
  async (t) => {
    if (process.env.REDIS_URL) return t.plan(0, 'fault injection needs a redis-server of our own')
    const redis = await startRedis()
    t.teardown(async () => {
      redis.resume()
      await redis.stop()
    })
    const log = new LogLines()
    const set = await startTwoIdps(t, {
      store: redis.url,
      keyPrefix: redis.prefix,
      backchannel: 'shared',
      // A store timeout far past the drain: only the drain can end the try in time.
      config: { logLevel: 'info', storeTimeout: 20_000 },
      gateway: { logStream: log.stream },
    })
    const base = set.urls[0]!
    const app = set.apps[0]!
    const carol = await login(base, { user: 'carol', params: { idp: 'corp' } })
    const carolKey = redisKeys(redis.prefix).session(sessionRefOf(app, carol.jar.get(base, 'gatehouse')!).id)

    // Each try at carrying the token out claims it first: counted, and told when it is answered.
    const replay = app.gatehouse.stores.replay
    const claim = replay.claim.bind(replay)
    let claims = 0
    let answered = 0
    let lastAnswered = 0
    let firstClaim = () => {}
    const claimed = new Promise<void>((resolve) => {
      firstClaim = resolve
    })
    replay.claim = (key, holdMs) => {
      claims++
      firstClaim()
      return claim(key, holdMs).finally(() => {
        answered++
        lastAnswered = performance.now()
      })
    }

    set.corp.idp.answer('jwks', { status: 503, body: 'unavailable', headers: { 'retry-after': '1' } })
    const delivered = await postLogoutToken(base, await set.corp.logoutToken({ sub: 'carol' }))
    t.equal(delivered.status, 503, "corp's token is held: its keys could not be read")
    // The keys can be read again, and the store answers nothing: the held
    // token's next try (1 s on) verifies it and waits on its claim.
    redis.freeze()
    set.corp.idp.answer('jwks')
    await claimed

    // As a SIGTERM shuts it down (start.ts): the last pass cut off at 1.5 s.
    app.gatehouse.lasting.shutDown()
    app.gatehouse.lasting.drain.start(DRAIN)
    const stopping = performance.now()
    await app.close()
    const took = performance.now() - stopping

    t.ok(took < DRAIN, `closed within the drain (${Math.round(took)} ms of ${DRAIN})`)
    await pollUntil(async () => answered === claims, 5_000, "the try's claim still awaited after the close")
    const ended = lastAnswered - stopping
    t.ok(ended < DRAIN, `the try's store command ended within the drain too (${Math.round(ended)} ms)`)
    const lost = log.lines.filter((line) => line.code === LOST)
    t.match(
      lost,
      [{ reason: 'closed', owed: 1 }],
      'verified and not carried out, it was owed, then dropped with what was owed, and said to be',
    )
    t.notOk(
      lost.some((line) => 'unverified' in line),
      'not dropped as unverified: its keys had been read',
    )

    // The store runs again, and reads what was sent to it while it was frozen.
    redis.resume()
    const probe = new Redis(redis.url)
    t.teardown(() => probe.quit())
    t.equal(await probe.exists(carolKey), 1, "carol's session was not ended: the logout was not carried out")
    const seen = await probe.keys(`${redis.prefix}seen:*`)
    const noted = await Promise.all(seen.map((key) => probe.get(key)))
    t.notOk(
      noted.some((value) => value === 'done' || value === 'owed'),
      `nothing says the token was carried out (${noted.join(', ') || 'no key'})`,
    )
  },
)
