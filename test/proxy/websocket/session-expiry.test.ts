import t, { type Test } from 'tap'
import type { ReadOptions, SessionData, SessionRef } from '../../../src/session/types.js'
import { route, TestClock, type TestConfigInput } from '../../helpers/gateway.js'
import { apiCall, login } from '../../helpers/login.js'
import { startRedis } from '../../helpers/redis.js'
import { type Stack, startStack } from '../../helpers/stack.js'
import { BOUND, browserHeaders, closed, openSocket, wsUpstream, wsUrl } from '../../helpers/websocket.js'

const IDLE = 40_000 // ms; the access token (60 s, refreshed 5 s early) is not due before 55 s
const RECHECK = 50 // ms

interface Read {
  readonly now: number
  readonly touch: boolean
  readonly found: boolean
}

/**
 * Records every session read the gateway makes once they are answered, so
 * a test can wait for the watch's next read instead of sleeping. Only the
 * socket's watch reads while a test sends no HTTP call.
 */
function recordReads(stack: Stack) {
  const store = stack.gateway.app.gatehouse.stores.sessions
  const get = store.get.bind(store)
  const reads: Read[] = []
  let waiting: { match: (read: Read) => boolean; resolve: (read: Read) => void }[] = []
  store.get = async (
    ref: SessionRef,
    now: number,
    options?: ReadOptions,
  ): Promise<SessionData | undefined> => {
    const session = await get(ref, now, options)
    const read = { now, touch: options?.touch !== false, found: session !== undefined }
    reads.push(read)
    const matched = waiting.filter((w) => w.match(read))
    waiting = waiting.filter((w) => !matched.includes(w))
    for (const w of matched) w.resolve(read)
    return session
  }
  return {
    reads,
    /** The first read from now on that `match`es, or a rejection once BOUND passes. */
    next(match: (read: Read) => boolean = () => true): Promise<Read> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no such read within ${BOUND} ms`)), BOUND)
        waiting.push({
          match,
          resolve: (read) => {
            clearTimeout(timer)
            resolve(read)
          },
        })
      })
    },
  }
}

async function watchedSocket(
  t: Test,
  config: Partial<TestConfigInput> = {},
  idp: { refreshTokenTtl?: number; refreshExpiresIn?: boolean } = {},
) {
  const clock = new TestClock()
  const upstream = await wsUpstream(t)
  const stack = await startStack(t, {
    routes: () => [route('/live', upstream.url, { websocket: true })],
    config: { idleTimeout: IDLE, ...config },
    idp,
    gateway: { now: clock.now, websocketRecheck: RECHECK },
  })
  const { jar } = await login(stack.gateway.url)
  const started = clock.now()
  const browser = await openSocket(wsUrl(stack, '/live/feed'), browserHeaders(stack, jar))
  t.teardown(() => browser.terminate())
  return { stack, jar, clock, browser, started, reads: recordReads(stack) }
}

for (const store of ['memory', 'redis'] as const) {
  t.test(`${store}: a silent socket does not keep its session alive: 4401 at idleTimeout`, async (t) => {
    let config = {}
    if (store === 'redis') {
      const redis = await startRedis()
      t.teardown(() => redis.stop())
      config = { store: redis.url, keyPrefix: redis.prefix }
    }
    const { stack, jar, clock, browser, started, reads } = await watchedSocket(t, config)
    // Half the idle timeout, five times the touch interval: a read that
    // slides the expiry would slide it here.
    clock.advance(IDLE / 2)
    const halfway = await reads.next((read) => read.now >= started + IDLE / 2)
    t.same(halfway, { now: halfway.now, touch: false, found: true }, 'the watch reads without the touch')
    const end = closed(browser)
    clock.advance(IDLE / 2 + 1_000)
    t.same(await end, { code: 4401, reason: 'session ended' }, 'closed once idle since the last HTTP call')
    t.equal((await apiCall(jar, `${stack.gateway.url}/auth/user`)).status, 401, 'the session is over')
  })
}

t.test(
  'a message from the browser is activity: the next check slides the session, once however many were sent',
  async (t) => {
    const { clock, browser, started, reads } = await watchedSocket(t)
    clock.advance(IDLE / 2)
    const touched = reads.next((read) => read.touch)
    // The echo of the last message means the gateway has read all fifty.
    let echoes = 0
    const allRelayed = new Promise<void>((resolve) =>
      browser.on('message', () => {
        if (++echoes === 50) resolve()
      }),
    )
    for (let i = 0; i < 50; i++) browser.send(`typing ${i}`)
    const first = await touched
    t.ok(first.now >= started + IDLE / 2 && first.found, 'a check after the messages reads with the touch')
    await allRelayed
    // On a loaded machine the fifty may arrive on both sides of one check,
    // so two checks may touch; never one per message.
    await reads.next()
    const after = await reads.next()
    t.equal(after.touch, false, 'and a check after all fifty reads without the touch')
    const touching = reads.reads.filter((read) => read.touch).length
    t.ok(
      touching >= 1 && touching <= 2,
      `fifty messages made ${touching} touching reads, not one per message`,
    )

    // Past the idle expiry the session had before the messages: still alive.
    clock.advance(IDLE / 2 + 1_000)
    const later = await reads.next((read) => read.now >= started + IDLE + 1_000)
    t.ok(later.found, 'the session slid from the messages')
    t.equal(browser.readyState, browser.OPEN)

    // Silent from here on: it ends a full idle timeout after the last message.
    const end = closed(browser)
    clock.advance(IDLE)
    t.equal((await end).code, 4401)
  },
)

t.test('however active the socket, the session ends at absoluteTimeout', async (t) => {
  const { clock, browser, started, reads } = await watchedSocket(t, { absoluteTimeout: 50_000 })
  let elapsed = 0
  for (const step of [IDLE / 2, IDLE / 2 + 1_000]) {
    clock.advance(step)
    elapsed += step
    const touched = reads.next((read) => read.touch && read.now >= started + elapsed)
    browser.send('still typing')
    t.ok((await touched).found, `alive at +${elapsed} ms, past the first idle expiry, and touched`)
  }
  const end = closed(browser)
  clock.advance(10_000)
  browser.send('still typing')
  t.same(await end, { code: 4401, reason: 'session ended' })
})

t.test('the socket closes when the refresh token expires, which the store knows nothing of', async (t) => {
  // The IdP says (refresh_expires_in) its refresh token lives 30 s: the
  // session ends then, before the idle and absolute timeouts.
  const { clock, browser, started, reads } = await watchedSocket(
    t,
    {},
    { refreshTokenTtl: 30, refreshExpiresIn: true },
  )
  clock.advance(20_000)
  t.ok(
    (await reads.next((read) => read.now >= started + 20_000)).found,
    'alive before the refresh token expires',
  )
  t.equal(browser.readyState, browser.OPEN)
  const end = closed(browser)
  clock.advance(11_000)
  t.same(await end, { code: 4401, reason: 'session ended' })
})
