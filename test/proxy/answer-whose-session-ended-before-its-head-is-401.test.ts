import type { IncomingMessage, ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import type { ReadOptions, SessionData, SessionRef } from '../../src/session/types.js'
import { type AwaitedLog, awaitedLog } from '../helpers/awaited-log.js'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route, type TestRoute } from '../helpers/gateway.js'
import { serveHttp } from '../helpers/http-server.js'
import { apiCall, login } from '../helpers/login.js'
import { startRedis } from '../helpers/redis.js'
import { type Stack, startStack } from '../helpers/stack.js'

/*
 * A streamed answer's session was read again only when a chunk came, after
 * its head had gone out: a long poll (or an upstream slow to its first
 * byte) whose session ended meanwhile sent its 200 head, and its first
 * chunk then cut the connection, so the browser saw a network error where
 * any other request of the ended session got 401. The head now waits for
 * the read, when it comes `interval` (RECHECK here) or more after it.
 */

const RECHECK = 400 // ms
const BODY = ['first ', 'second ', 'third'] as const

/** What the delaying upstream answers: a status, and `hint` a 103 first. */
interface Answer {
  readonly status?: number
  readonly hint?: boolean
  readonly headers?: Readonly<Record<string, string>>
  /** The body's chunks are followed by no end: the answer stays open, as a long poll's stream does. */
  readonly open?: boolean
  /** How long after the request arrived its head comes at the earliest, ms; default RECHECK. */
  readonly after?: number
}

/**
 * An upstream that holds each request until the test releases it, and then
 * until at least RECHECK has passed since it arrived: its head comes after
 * the interval, however quickly the test acts. `arrived` resolves with each
 * request; `closed` with whether each answer was sent whole, once it closes.
 */
async function delayingUpstream(t: Test, answers: (n: number) => Answer = () => ({})) {
  const waiting: ((req: IncomingMessage) => void)[] = []
  const queued: IncomingMessage[] = []
  let released: (() => void) | undefined
  let release = new Promise<void>((resolve) => {
    released = resolve
  })
  let count = 0
  const closes: Promise<boolean>[] = []
  const url = await serveHttp(t, (req: IncomingMessage, res: ServerResponse) => {
    const answer = answers(count++)
    const at = performance.now()
    closes.push(new Promise((resolve) => res.on('close', () => resolve(res.writableFinished))))
    if (answer.hint) res.writeEarlyHints({ link: '</app.css>; rel=preload; as=style' })
    const next = waiting.shift()
    if (next) next(req)
    else queued.push(req)
    const gate = release
    gate.then(() => {
      const due = at + (answer.after ?? RECHECK)
      const whenDue = () => {
        // libuv times from its loop's clock, read at the start of the
        // loop's turn: a timer armed late in a busy turn fires early by
        // performance.now(), and the head came within the interval, unheld.
        const left = due - performance.now()
        if (left > 0) {
          setTimeout(whenDue, Math.ceil(left))
          return
        }
        if (res.destroyed) return
        const status = answer.status ?? 200
        res.writeHead(status, { 'content-type': 'text/plain', ...answer.headers })
        if (status === 204 || status === 304 || status === 401) {
          res.end()
          return
        }
        // Each chunk on its own turn: the browser's body comes in pieces.
        let i = 0
        const write = () => {
          if (i === BODY.length) {
            if (!answer.open) res.end()
          } else {
            res.write(BODY[i++])
            setImmediate(write)
          }
        }
        write()
      }
      whenDue()
    })
  })
  return {
    url,
    /** For each request so far, whether its answer was sent whole, once its connection closed. */
    closed: () => Promise.all(closes),
    /** The next request to arrive (or the one that already has). */
    arrived(): Promise<IncomingMessage> {
      const req = queued.shift()
      if (req) return Promise.resolve(req)
      return new Promise((resolve) => waiting.push(resolve))
    },
    /** Lets every request held so far answer; later ones wait for the next release. */
    release(): void {
      released!()
      release = new Promise<void>((resolve) => {
        released = resolve
      })
    },
  }
}

/** The session reads that do not slide the idle expiry: only a stream's rechecks make them here. */
function recheckReads(stack: Stack) {
  const store = stack.gateway.app.gatehouse.stores.sessions
  const get = store.get.bind(store)
  const reads: { found: boolean; failed: boolean }[] = []
  store.get = async (
    ref: SessionRef,
    now: number,
    options?: ReadOptions,
  ): Promise<SessionData | undefined> => {
    if (options?.touch !== false) return get(ref, now, options)
    try {
      const session = await get(ref, now, options)
      reads.push({ found: session !== undefined, failed: false })
      return session
    } catch (err) {
      reads.push({ found: false, failed: true })
      throw err
    }
  }
  return reads
}

async function setup(
  t: Test,
  answers?: (n: number) => Answer,
  options: {
    store?: { store: string; keyPrefix: string }
    route?: Partial<TestRoute>
    log?: AwaitedLog
    interval?: number
  } = {},
) {
  const upstream = await delayingUpstream(t, answers)
  const stack = await startStack(t, {
    routes: () => [route('/poll', upstream.url, options.route)],
    config: { ...options.store, ...(options.log ? { logLevel: 'info' as const } : {}) },
    gateway: {
      websocketRecheck: options.interval ?? RECHECK,
      ...(options.log ? { logStream: options.log.logStream } : {}),
    },
  })
  const { jar } = await login(stack.gateway.url)
  const url = `${stack.gateway.url}/poll/next`
  const cookieName = stack.config.session.cookieName
  return { upstream, stack, jar, url, cookieName, reads: recheckReads(stack) }
}

/** An answer's headers a test compares, less those that differ by request or moment. */
function comparable(response: Response): Record<string, string> {
  const headers: Record<string, string> = {}
  response.headers.forEach((value, name) => {
    headers[name] = value
  })
  for (const name of ['date', 'x-request-id', 'set-cookie', 'keep-alive', 'connection']) delete headers[name]
  return headers
}

for (const [name, answer] of [
  ['a 200', { open: true }],
  ['a 204', { status: 204 }],
  ['a 304', { status: 304, headers: { etag: '"v1"', 'content-length': '5' } }],
  ['a 200 after a 103', { hint: true, open: true }],
] as const) {
  t.test(
    `${name} whose head comes after its session ended is answered 401, as the guard answers`,
    async (t) => {
      const { upstream, stack, jar, url, cookieName, reads } = await setup(t, () => answer)
      const cookie = jar.header(url)!
      const pending = fetch(url, { headers: { cookie, 'x-csrf': '1' } })
      await upstream.arrived()
      const out = await apiCall(jar, `${stack.gateway.url}/auth/logout-everywhere`, { method: 'POST' })
      t.equal(out.status, 200, 'the session is ended while the upstream holds its answer')
      upstream.release()
      const response = await pending
      t.equal(response.status, 401)
      const body = await response.text()
      t.same(JSON.parse(body), {
        error: 'unauthenticated',
        message: 'No session. Send the user to the login endpoint.',
      })
      // The session ended while this request used it: a sign-in over it in
      // this browser would have set the cookie this answer's clearing would
      // delete (`endedElsewhere`, error-handler.ts).
      t.notOk(
        response.headers.getSetCookie().some((c) => c.startsWith(`${cookieName}=`)),
        'the session cookie is left alone',
      )
      t.same(reads, [{ found: false, failed: false }], 'one read, before anything was sent')
      const guard = await fetch(url, { headers: { cookie, 'x-csrf': '1' } })
      t.equal(guard.status, 401)
      t.equal(await guard.text(), body, "the guard's body for a request after the logout")
      t.same(comparable(response), comparable(guard), 'and its headers')
      // A 204 or 304 is whole with its head.
      if ('open' in answer) t.same(await upstream.closed(), [false], "the upstream's exchange was given up")
    },
  )
}

t.test('a head after the interval whose session stands goes on whole, and restarts the clock', async (t) => {
  const { upstream, url, jar, reads } = await setup(t)
  const pending = fetch(url, { headers: { cookie: jar.header(url)!, 'x-csrf': '1' } })
  await upstream.arrived()
  upstream.release()
  const response = await pending
  t.equal(response.status, 200)
  t.equal(await response.text(), BODY.join(''), 'the whole body')
  t.same(reads, [{ found: true, failed: false }], 'one read: the chunks after it come within the interval')
})

t.test('a head sooner than the interval is not held: no read', async (t) => {
  const quick = await serveHttp(t, (_req, res) => res.end('quick'))
  const stack = await startStack(t, {
    routes: () => [route('/quick', quick)],
    gateway: { websocketRecheck: RECHECK },
  })
  const reads = recheckReads(stack)
  const { jar } = await login(stack.gateway.url)
  const response = await apiCall(jar, `${stack.gateway.url}/quick/x`)
  t.equal(response.status, 200)
  t.equal(response.text, 'quick')
  t.same(reads, [], 'the session was read by the guard only')
})

t.test("with the store unreachable during the head's read, the answer goes on", async (t) => {
  const redis = await startRedis({ args: [] })
  t.teardown(() => redis.stop())
  const { upstream, url, jar, reads } = await setup(t, undefined, {
    store: { store: redis.url, keyPrefix: redis.prefix },
  })
  const pending = fetch(url, { headers: { cookie: jar.header(url)!, 'x-csrf': '1' } })
  await upstream.arrived()
  await redis.kill()
  upstream.release()
  const response = await pending
  t.equal(response.status, 200)
  t.equal(await response.text(), BODY.join(''), 'the whole body')
  t.same(reads, [{ found: false, failed: true }], 'the read failed')
})

/**
 * `recheckReads`, whose reads wait until `release` is called: the test acts
 * while the head's read is pending. `started` resolves once one has begun.
 */
function heldReads(stack: Stack) {
  const store = stack.gateway.app.gatehouse.stores.sessions
  const get = store.get.bind(store)
  let begun: (() => void) | undefined
  const started = new Promise<void>((resolve) => {
    begun = resolve
  })
  let release: (() => void) | undefined
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  let answered: ((found: boolean) => void) | undefined
  const done = new Promise<boolean>((resolve) => {
    answered = resolve
  })
  store.get = async (
    ref: SessionRef,
    now: number,
    options?: ReadOptions,
  ): Promise<SessionData | undefined> => {
    if (options?.touch !== false) return get(ref, now, options)
    begun!()
    await released
    const session = await get(ref, now, options)
    answered!(session !== undefined)
    return session
  }
  return { started, release: () => release!(), done }
}

t.test(
  'a browser that leaves while its head is held gets nothing written, and the upstream call goes',
  async (t) => {
    const log = awaitedLog()
    const { upstream, stack, jar, url } = await setup(t, () => ({ open: true }), { log })
    const read = heldReads(stack)
    const browser = new AbortController()
    const pending = fetch(url, {
      headers: { cookie: jar.header(url)!, 'x-csrf': '1' },
      signal: browser.signal,
    })
    pending.catch(() => {})
    await upstream.arrived()
    upstream.release()
    await read.started
    const out = await apiCall(jar, `${stack.gateway.url}/auth/logout-everywhere`, { method: 'POST' })
    t.equal(out.status, 200, 'the session ended while its head waits for the read')
    browser.abort()
    t.same(await upstream.closed(), [false], 'the upstream call was given up while the read was pending')
    read.release()
    t.equal(await read.done, false, 'the read, answered after the browser left, found the session ended')
    // A round trip after the read: whatever its answer set off has run by then.
    t.equal((await apiCall(new CookieJar(), `${stack.gateway.url}/auth/user`)).status, 401)
    t.same(
      log.lines.filter((line) => /answered 401/.test(String(line.msg)) || Number(line.level) >= 40),
      [],
      'nothing answered to the browser gone, and nothing went wrong',
    )
  },
)

for (const stands of [true, false]) {
  t.test(
    `while the gateway drains, a held head ${stands ? 'goes on' : 'is answered 401'} through Fastify's send, closing the connection`,
    async (t) => {
      const { upstream, stack, jar, url } = await setup(t)
      const pending = fetch(url, { headers: { cookie: jar.header(url)!, 'x-csrf': '1' } })
      await upstream.arrived()
      if (!stands) {
        const out = await apiCall(jar, `${stack.gateway.url}/auth/logout-everywhere`, { method: 'POST' })
        t.equal(out.status, 200)
      }
      // close() waits for the answer in flight; its preClose hook has run once it returns its promise.
      const closing = stack.gateway.close()
      upstream.release()
      const response = await pending
      t.equal(response.status, stands ? 200 : 401)
      t.equal(response.headers.get('connection'), 'close', 'the draining answer says so')
      if (stands) t.equal(await response.text(), BODY.join(''), 'the whole body')
      else t.equal((await response.json()).error, 'unauthenticated')
      await closing
    },
  )
}

t.test(
  "a replay's head is held by the time since its first attempt's session read, not its own dispatch",
  async (t) => {
    // Each attempt's head comes within the interval of its own dispatch,
    // both together well past it.
    const INTERVAL = 1_000
    const refused = { 'www-authenticate': 'Bearer error="invalid_token"' }
    const { upstream, stack, jar, url } = await setup(
      t,
      (n) => (n === 0 ? { status: 401, headers: refused, after: 600 } : { open: true, after: 600 }),
      { route: { retryOnInvalidToken: true }, interval: INTERVAL },
    )
    const pending = fetch(url, { headers: { cookie: jar.header(url)!, 'x-csrf': '1' } })
    const first = await upstream.arrived()
    upstream.release()
    const replay = await upstream.arrived()
    t.not(replay.headers.authorization, first.headers.authorization, 'the replay carries a new token')
    const out = await apiCall(jar, `${stack.gateway.url}/auth/logout-everywhere`, { method: 'POST' })
    t.equal(out.status, 200, "the session ended while the replay's answer is awaited")
    upstream.release()
    const response = await pending
    t.equal(response.status, 401)
    t.equal((await response.json()).error, 'unauthenticated')
  },
)

t.test('a 204 held while its session stands goes on, and its exchange ends', async (t) => {
  const { upstream, jar, url, reads } = await setup(t, () => ({ status: 204 }))
  const answers: number[] = []
  const ports: (number | undefined)[] = []
  for (let i = 0; i < 2; i++) {
    const pending = fetch(url, { headers: { cookie: jar.header(url)!, 'x-csrf': '1' } })
    ports.push((await upstream.arrived()).socket.remotePort)
    upstream.release()
    answers.push((await pending).status)
  }
  t.same(answers, [204, 204])
  t.same(
    reads,
    [
      { found: true, failed: false },
      { found: true, failed: false },
    ],
    'each read before its head went on',
  )
  // An exchange left paused keeps its connection busy: the next request
  // would need another.
  t.equal(ports[1], ports[0], 'the second request went on the connection the first one left')
})

t.test('a HEAD whose head comes after the interval: held for the read like any other', async (t) => {
  const { upstream, stack, jar, url, reads } = await setup(t)
  const cookie = jar.header(url)!
  // undici ends a HEAD's exchange with its head, paused or not: the end
  // comes while the head is held.
  const standing = fetch(url, { method: 'HEAD', headers: { cookie, 'x-csrf': '1' } })
  await upstream.arrived()
  upstream.release()
  const answered = await standing
  t.equal(answered.status, 200, 'the session standing, the head goes on')
  t.equal(await answered.text(), '')
  t.same(reads, [{ found: true, failed: false }], 'after one read')
  const ended = fetch(url, { method: 'HEAD', headers: { cookie, 'x-csrf': '1' } })
  await upstream.arrived()
  t.equal((await apiCall(jar, `${stack.gateway.url}/auth/logout-everywhere`, { method: 'POST' })).status, 200)
  upstream.release()
  t.equal((await ended).status, 401, 'the session ended, 401')
  t.same(reads.at(-1), { found: false, failed: false })
})
