import { createHash } from 'node:crypto'
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { route } from '../helpers/gateway.js'
import { serveHttp } from '../helpers/http-server.js'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'
import { within } from '../helpers/within.js'

/*
 * The token rides on the request only: an upstream streaming server-sent
 * events cannot tell that the session ended. A stream opened before "log
 * out everywhere" (or with a stolen cookie) went on delivering the user's
 * events for as long as the upstream sent them. WebSockets had a watch for
 * this (websocket/watch.ts); a streamed HTTP answer had none.
 */

const RECHECK = 300 // ms
const EVERY = 50 // ms between events

/** An upstream that sends an event every EVERY ms until the browser goes. */
async function eventSource(t: Test) {
  let open = 0
  let closeOne!: () => void
  const firstClosed = new Promise<void>((resolve) => {
    closeOne = resolve
  })
  const url = await serveHttp(t, (_req, res) => {
    open++
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    let n = 0
    const timer = setInterval(() => res.write(`data: event ${n++}\n\n`), EVERY)
    res.on('close', () => {
      clearInterval(timer)
      open--
      closeOne()
    })
  })
  return {
    url,
    /** Whether the first stream the upstream served was closed within `ms`. */
    closedWithin: (ms: number) =>
      within(firstClosed, 'the first stream closed', ms).then(
        () => true,
        () => false,
      ),
    get open() {
      return open
    },
  }
}

/** Reads the stream until it ends or `ms` pass; the events read, and whether it ended. */
async function readFor(reader: ReadableStreamDefaultReader<Uint8Array>, ms: number) {
  const until = Date.now() + ms
  let events = 0
  const decoder = new TextDecoder()
  for (;;) {
    const left = until - Date.now()
    if (left <= 0) return { events, ended: false }
    const next = await Promise.race([
      reader.read().catch(() => ({ done: true as const, value: undefined })),
      new Promise<'later'>((resolve) => setTimeout(() => resolve('later'), left)),
    ])
    if (next === 'later') return { events, ended: false }
    if (next.done) return { events, ended: true }
    events += decoder.decode(next.value).split('data: ').length - 1
  }
}

async function setup(t: Test) {
  const source = await eventSource(t)
  const stack = await startStack(t, {
    routes: () => [route('/events', source.url)],
    gateway: { websocketRecheck: RECHECK },
  })
  const { jar } = await login(stack.gateway.url)
  const url = `${stack.gateway.url}/events/stream`
  const open = async () => {
    const response = await fetch(url, { headers: { cookie: jar.header(url)!, 'x-csrf': '1' } })
    t.equal(response.status, 200)
    const reader = response.body!.getReader()
    t.teardown(() => reader.cancel().catch(() => {}))
    return reader
  }
  return { source, stack, jar, open }
}

t.test('an event stream is cut off within the recheck interval once its session has ended', async (t) => {
  const { source, stack, jar, open } = await setup(t)
  const reader = await open()
  const before = await readFor(reader, 3 * EVERY)
  t.ok(before.events > 0, 'events arrive while the session stands')
  const out = await apiCall(jar, `${stack.gateway.url}/auth/logout-everywhere`, { method: 'POST' })
  t.equal(out.status, 200, 'the session is ended')
  const after = await readFor(reader, 10 * RECHECK)
  t.ok(after.ended, 'the stream ended')
  t.ok(
    after.events <= (2 * RECHECK) / EVERY,
    `at most the recheck interval's events after the session ended (${after.events})`,
  )
  t.ok(await source.closedWithin(2_000), "the upstream's stream was given up")
  t.equal(source.open, 0)
})

t.test('an event stream whose session stands goes on through many rechecks', async (t) => {
  const { source, open } = await setup(t)
  const reader = await open()
  const read = await readFor(reader, 6 * RECHECK)
  t.notOk(read.ended, 'the stream is still open')
  t.ok(read.events >= (3 * RECHECK) / EVERY, `its events kept coming (${read.events})`)
  t.equal(source.open, 1)
})

t.test(
  'a download whose session stands arrives whole and in order through rechecks and browser stalls',
  async (t) => {
    const BODY = 32 * 1024 * 1024
    const expected = createHash('sha256')
    const chunks: Buffer[] = []
    for (let i = 0; i < BODY / 65_536; i++) {
      const chunk = Buffer.alloc(65_536, i % 251)
      chunks.push(chunk)
      expected.update(chunk)
    }
    const files = await serveHttp(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY })
      let i = 0
      const pump = () => {
        while (i < chunks.length) if (!res.write(chunks[i++])) return
        res.end()
      }
      res.on('drain', pump)
      pump()
    })
    const stack = await startStack(t, {
      routes: () => [route('/files', files)],
      gateway: { websocketRecheck: RECHECK },
    })
    const { jar } = await login(stack.gateway.url)
    const url = `${stack.gateway.url}/files/big`
    const received = createHash('sha256')
    let length = 0
    let head = ''
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(new URL(url).port), '127.0.0.1')
      socket.write(
        `GET /files/big HTTP/1.1\r\nHost: x\r\nCookie: ${jar.header(url)}\r\nX-CSRF: 1\r\nConnection: close\r\n\r\n`,
      )
      let inBody = false
      socket.on('data', (data: Buffer) => {
        let chunk = data
        if (!inBody) {
          head += data.toString('latin1')
          const end = head.indexOf('\r\n\r\n')
          if (end === -1) return
          inBody = true
          chunk = data.subarray(data.length - (head.length - end - 4))
          head = head.slice(0, end)
        }
        const before = length
        length += chunk.length
        received.update(chunk)
        // Stalls longer than the recheck interval, every 4 MiB.
        if (Math.floor(before / 4_194_304) !== Math.floor(length / 4_194_304)) {
          socket.pause()
          setTimeout(() => socket.resume(), 2 * RECHECK)
        }
      })
      socket.on('end', () => resolve())
      socket.on('error', reject)
    })
    t.match(head, /^HTTP\/1\.1 200 /)
    t.equal(length, BODY, 'every byte')
    t.equal(received.digest('hex'), expected.digest('hex'), 'in order')
  },
)
