/**
 * Redis stops answering for seconds (`DEBUG SLEEP`: a slow `KEYS`, a
 * fork on a large dataset, a long script) just as 200 requests find their
 * access token due. Each must get its answer within the command and
 * connection budgets rather than wait Redis out, as a 503 with
 * Retry-After; no request may redeem the refresh token on its own, and
 * once Redis answers again the session is served on one refresh.
 */
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import t from 'tap'
import { apiCall, login } from '../helpers/login.js'
import { startObservedStack } from '../helpers/observed-stack.js'
import { startRedis } from '../helpers/redis.js'
import { pollUntil } from '../helpers/within.js'

const SLEEP_S = 6

t.test(
  '200 refreshes against a Redis asleep for 6 s: prompt 503s, no replay, one refresh after',
  async (t) => {
    const redis = await startRedis({ args: ['--enable-debug-command', 'yes'] })
    t.teardown(() => redis.stop())
    const sleeper = new Redis(redis.url)
    t.teardown(() => sleeper.disconnect())
    const stack = await startObservedStack(t, {
      accessTokenTtl: 60,
      config: { store: redis.url, keyPrefix: redis.prefix },
    })
    const base = stack.gateway.url
    const { jar } = await login(base)
    t.equal((await apiCall(jar, `${base}/api/orders`)).status, 200, 'signed in')
    stack.idp.resetStats()

    stack.clock.advance(61_000)
    // Connected first, so that DEBUG SLEEP is on the wire before any request leaves.
    await sleeper.ping()
    const sleeping = sleeper.call('DEBUG', 'SLEEP', String(SLEEP_S))
    const started = performance.now()
    const answers = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const answer = await apiCall(jar, `${base}/api/orders`)
        return { answer, ms: performance.now() - started }
      }),
    )
    const slowest = Math.max(...answers.map((a) => a.ms))
    t.ok(
      slowest < (SLEEP_S - 1) * 1_000,
      `every answer came before Redis woke (slowest ${Math.round(slowest)} ms)`,
    )
    t.same(
      [...new Set(answers.map(({ answer }) => answer.status))],
      [503],
      'each a 503: nothing could be read or locked',
    )
    t.ok(
      answers.every(({ answer }) => Number(answer.headers.get('retry-after')) >= 1),
      'each with Retry-After',
    )
    t.equal(stack.idp.stats.tokenRequests, 0, 'the IdP was not asked while nothing could be locked')
    await sleeping

    await pollUntil(async () => (await apiCall(jar, `${base}/api/orders`)).status === 200)
    t.pass('served once Redis answers again')
    t.equal(stack.idp.stats.refreshGrants, 1, 'on one refresh')
    t.equal(stack.idp.stats.refreshReplays, 0, 'no refresh token presented twice')
    t.equal(stack.idp.stats.revokedGrants, 0)
    t.match(
      stack.lines.find((line) => line.code === 'GATEHOUSE_ERR_STORE_UNAVAILABLE'),
      {
        cause:
          /^Redis did not answer within the command timeout \(session\.storeTimeout\)$|^no connection to Redis/,
      },
      'the log says Redis did not answer',
    )
  },
)
