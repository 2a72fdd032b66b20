import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { request, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { buildGateway } from '../../src/server/gateway.js'
import { UNREACHABLE_ISSUER } from '../helpers/app.js'
import { route, testConfig } from '../helpers/gateway.js'
import { scriptedUpstream } from '../helpers/scripted-upstream.js'

/**
 * When the slow upstream routes answer, or end their stalled body: three
 * times the 100 ms route timeout. undici's own header and body timers tick
 * every 499 ms, so the earliest they can fire is 499 ms after they are
 * armed, after this. A 504, or a body cut short, with the upstream's side
 * abandoned before it answered, was therefore the gateway's own timer:
 * proven by the order of events, not by a clock a loaded machine stretches.
 * The order is the one the process saw: undici reports the gateway giving
 * up as it happens, in the gateway's own timer, so the upstream's later
 * timer knows of it however long the machine stalled, and whether or not
 * the upstream ever read the request.
 */
const UPSTREAM_ANSWERS_AFTER = 300

/**
 * The drip route's timeout, and how many chunks it sends 100 ms apart: each
 * pause is 800 ms inside it, whatever a loaded machine adds to the 100, and
 * the whole answer takes a third longer than it.
 */
const STEADY_TIMEOUT = 900
const DRIPS = 12

/** An answer larger than the sockets between upstream, gateway and browser buffer. */
const LARGE = 16 * 1024 * 1024
const LARGE_BODY = Buffer.alloc(LARGE, 'x')

/**
 * The slow-reader routes' timeout, and how much longer the browser leaves
 * their answer unread. Below a second, and far above the pauses a loaded
 * machine puts in the flow once the browser reads again: the browser, the
 * gateway and the upstream share one event loop here, and 16 MB through it
 * paused the body for over 500 ms under load, which cut it short.
 */
const READER_TIMEOUT = 900
const UNREAD_FOR = 3 * READER_TIMEOUT

/** How an exchange ended for the upstream: it answered whole, or the gateway cut it off first. */
type UpstreamEnd = 'answered' | 'cut'

async function setup(t: Test) {
  const upstream = await scriptedUpstream()
  t.teardown(() => upstream.close())
  /** The exchange a request-target names (its `x`, see `exchange`). */
  const exchangeOf = (target: string) => new URL(target, upstream.url).searchParams.get('x') ?? ''
  /** How each exchange ends for the upstream, the first report of it kept. */
  const endings = new Map<string, (how: UpstreamEnd) => void>()
  /** The exchanges the gateway gave up on. */
  const abandoned = new Set<string>()
  // Published by undici as the gateway aborts its request to the upstream,
  // from within the timer that fired.
  const gaveUp = (message: unknown) => {
    const { request } = message as { request: { origin: string; path: string } }
    if (request.origin !== upstream.url) return
    const x = exchangeOf(request.path)
    abandoned.add(x)
    endings.get(x)?.('cut')
  }
  subscribe('undici:request:error', gaveUp)
  t.teardown(() => unsubscribe('undici:request:error', gaveUp))
  upstream.answer((res, target) => {
    const x = exchangeOf(target)
    const url = new URL(target, upstream.url).pathname
    // Ended by the upstream (`res.end`) before its connection closed, or cut off by the gateway.
    res.once('close', () => endings.get(x)?.(res.writableEnded ? 'answered' : 'cut'))
    /** Ends the answer with `last` after UPSTREAM_ANSWERS_AFTER, unless the gateway has given up on it. */
    const endLater = (last: string) => {
      const timer = setTimeout(() => abandoned.has(x) || res.end(last), UPSTREAM_ANSWERS_AFTER)
      res.once('close', () => clearTimeout(timer))
    }
    if (url.endsWith('/late')) endLater('late')
    else if (url.endsWith('/stall')) {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('first ')
      endLater('and the rest')
    } else if (url.endsWith('/drip')) drip(res, DRIPS)
    else if (url.endsWith('/large')) res.end(LARGE_BODY)
    else res.end('soon')
  })
  const config = testConfig({
    port: 0,
    issuer: UNREACHABLE_ISSUER,
    routes: [
      route('/short', upstream.url, { token: 'none', csrf: false, timeout: 100 }),
      route('/maybe', upstream.url, { token: 'optional-user', csrf: false, timeout: 100 }),
      route('/steady', upstream.url, { token: 'none', csrf: false, timeout: STEADY_TIMEOUT }),
      // The slow-reader test's margin: this route's timeout against a 3× longer
      // backpressure, so a loaded machine's pause in the body is not read as a stall.
      route('/reader', upstream.url, { token: 'none', csrf: false, timeout: READER_TIMEOUT }),
      route('/optional-reader', upstream.url, {
        token: 'optional-user',
        csrf: false,
        timeout: READER_TIMEOUT,
      }),
    ],
  })
  const app = await buildGateway(config)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  // A session cookie whose record is gone: the answer clears it, so it goes
  // out through Fastify's send rather than the hijacked reply.
  const sealed = app.encodeSecureSession(app.createSecureSession({ id: 'gone' }), 'session')
  const staleCookie = `${config.session.cookieName}=${encodeURIComponent(sealed)}`
  let exchanges = 0
  return {
    base,
    staleCookie,
    /**
     * A query naming a new exchange, for its request-target, and how that
     * exchange ends for the upstream: `cut` once the gateway gives up on it
     * or its connection closes unanswered, `answered` once the upstream ended
     * its answer first.
     */
    exchange() {
      const x = String(++exchanges)
      const ended = new Promise<UpstreamEnd>((resolve) => endings.set(x, resolve))
      return { query: `?x=${x}`, ended }
    },
  }
}

/** `chunks` chunks 100 ms apart, each pause well within the steady route's timeout, the whole well past it. */
function drip(res: ServerResponse, chunks: number): void {
  res.writeHead(200, { 'content-type': 'text/plain' })
  let sent = 0
  const timer = setInterval(() => {
    res.write(`${++sent} `)
    if (sent < chunks) return
    clearInterval(timer)
    res.end()
  }, 100)
  res.once('close', () => clearInterval(timer))
}

interface Answer {
  readonly status: number
  readonly body: string
  /** The whole answer arrived, not one cut short. */
  readonly complete: boolean
  /** From sending the request to the end of its answer, cut or whole. */
  readonly ms: number
}

interface Sending {
  readonly method?: string
  readonly headers?: Record<string, string>
  /** Written a chunk at a time, this many ms apart. */
  readonly body?: { readonly chunks: readonly string[]; readonly apart: number }
  /** The answer is left unread this long, as a slow browser leaves it. */
  readonly unreadFor?: number
}

function get(url: string, sending: Sending = {}): Promise<Answer> {
  const start = performance.now()
  return new Promise((resolve, reject) => {
    const req = request(url, { method: sending.method ?? 'GET', headers: sending.headers ?? {} }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      if (sending.unreadFor) {
        res.pause()
        setTimeout(() => res.resume(), sending.unreadFor)
      }
      res.on('data', (chunk: string) => {
        body += chunk
      })
      // An answer cut short ends in 'close' without 'end' (and 'error' on some Node lines).
      res.on('error', () => {})
      res.on('close', () =>
        resolve({ status: res.statusCode ?? 0, body, complete: res.complete, ms: performance.now() - start }),
      )
    })
    req.on('error', reject)
    const chunks = [...(sending.body?.chunks ?? [])]
    const next = () => {
      const chunk = chunks.shift()
      if (chunk === undefined) req.end()
      else {
        req.write(chunk)
        setTimeout(next, sending.body!.apart)
      }
    }
    next()
  })
}

t.test('a 100 ms route timeout gives 504 before a 300 ms answer, and the upstream is cut off', async (t) => {
  const { base, staleCookie, exchange } = await setup(t)
  for (const [path, headers] of [
    ['/short/late', {}],
    ['/maybe/late', { cookie: staleCookie }],
  ] as const) {
    const { query, ended: cut } = exchange()
    const answer = await get(`${base}${path}${query}`, { headers })
    t.equal(answer.status, 504, `${path}: 504 after ${Math.round(answer.ms)} ms`)
    t.match(answer.body, /"error":"upstream_timeout"/)
    t.equal(await cut, 'cut', `${path}: the upstream saw the request abandoned before it answered`)
  }
})

t.test('an answer within a 100 ms route timeout is served', async (t) => {
  const { base, staleCookie, exchange } = await setup(t)
  for (const [path, headers] of [
    ['/short/soon', {}],
    ['/maybe/soon', { cookie: staleCookie }],
  ] as const) {
    const { query, ended } = exchange()
    const answer = await get(`${base}${path}${query}`, { headers })
    t.equal(answer.status, 200, path)
    t.equal(answer.body, 'soon')
    t.equal(await ended, 'answered')
  }
})

t.test(
  'a body that stalls for 300 ms on a 100 ms route timeout is cut off, and the upstream with it',
  async (t) => {
    const { base, staleCookie, exchange } = await setup(t)
    for (const [path, headers] of [
      ['/short/stall', {}],
      ['/maybe/stall', { cookie: staleCookie }],
    ] as const) {
      const { query, ended: cut } = exchange()
      const answer = await get(`${base}${path}${query}`, { headers })
      t.equal(answer.status, 200, `${path}: the head had gone out`)
      t.equal(answer.body, 'first ', 'what arrived before the stall')
      t.notOk(answer.complete, `${path}: cut short after ${Math.round(answer.ms)} ms, not passed as complete`)
      t.equal(await cut, 'cut', `${path}: the upstream's stalled answer was abandoned before it ended`)
    }
  },
)

t.test('the timeout bounds each pause in the body, not the whole answer', async (t) => {
  const { base, exchange } = await setup(t)
  const { query, ended } = exchange()
  const answer = await get(`${base}/steady/drip${query}`)
  t.equal(answer.status, 200)
  t.equal(
    answer.body,
    Array.from({ length: DRIPS }, (_, i) => `${i + 1} `).join(''),
    `${DRIPS} chunks 100 ms apart, ${DRIPS * 100} ms in all, on a ${STEADY_TIMEOUT} ms route`,
  )
  t.ok(answer.complete)
  t.equal(await ended, 'answered')
})

t.test('a browser slow to read the answer is not timed out: the upstream waits on it', async (t) => {
  const { base, staleCookie, exchange } = await setup(t)
  for (const [path, headers] of [
    ['/reader/large', {}],
    ['/optional-reader/large', { cookie: staleCookie }],
  ] as const) {
    const { query, ended } = exchange()
    const answer = await get(`${base}${path}${query}`, { headers, unreadFor: UNREAD_FOR })
    t.equal(answer.status, 200, path)
    t.equal(
      answer.body.length,
      LARGE,
      `the whole answer, after ${UNREAD_FOR} ms of backpressure on a ${READER_TIMEOUT} ms route`,
    )
    t.equal(await ended, 'answered')
  }
})

t.test(
  'the wait for the answer starts once the request is sent, not while the browser uploads it',
  async (t) => {
    const { base } = await setup(t)
    const answer = await get(`${base}/short/soon`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
      body: { chunks: ['a', 'b', 'c', 'd'], apart: 100 },
    })
    t.equal(answer.status, 200, 'a body uploaded over 300 ms on a 100 ms route')
    t.equal(answer.body, 'soon', 'the upstream answered once the body was in')
  },
)
