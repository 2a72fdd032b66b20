import type { ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { gatewayOnBothReplyPaths } from '../helpers/both-reply-paths.js'
import { serveHttp } from '../helpers/http-server.js'
import { within } from '../helpers/within.js'

const SEND_TIMEOUT = 500 // 0.5 s
const CHUNK = Buffer.alloc(64 * 1024, 0x61)
/** More than the sockets between the upstream and the browser hold, so a browser that stops reading stalls the upstream. */
const BODY = 64 * 1024 * 1024
/**
 * The slow reader's stretch between pauses, and its pause. A pause is 0.2 s
 * short of sendTimeout at 0.6 of it: a loaded machine that holds the event
 * loop that long fires the cut-off before the resume. At 0.3, 350 ms; and
 * eight stretches keep the download's pauses alone (2.4 times sendTimeout)
 * past what a cut-off counted from the answer's start would allow.
 */
const STRETCH = 8 * 1024 * 1024
const PAUSE = SEND_TIMEOUT * 0.3

/**
 * An upstream that streams BODY bytes as fast as it is read, and records
 * when each answer's connection closed before its end.
 */
async function download(t: Test) {
  const cut: number[] = []
  let heard: ((at: number) => void) | undefined
  const url = await serveHttp(t, (_req, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY })
    let sent = 0
    const pump = () => {
      while (sent < BODY) {
        sent += CHUNK.length
        if (!res.write(CHUNK)) return
      }
      res.end()
    }
    res.on('drain', pump)
    res.on('close', () => {
      if (res.writableFinished) return
      const at = Date.now()
      cut.push(at)
      heard?.(at)
    })
    pump()
  })
  return {
    url,
    cut,
    /** When the upstream saw an answer cut off since `cut` was last emptied, or `undefined` once `ms` pass without. */
    cutWithin: (ms: number): Promise<number | undefined> =>
      cut.length > 0
        ? Promise.resolve(cut[0])
        : within(
            new Promise<number>((resolve) => {
              heard = resolve
            }),
            'a cut-off',
            ms,
          ).catch(() => undefined),
  }
}

async function setup(t: Test) {
  const upstream = await download(t)
  const lines: { level: number; msg: string; repeated?: number }[] = []
  const { port, staleCookie } = await gatewayOnBothReplyPaths(
    t,
    upstream.url,
    { sendTimeout: SEND_TIMEOUT, logLevel: 'warn' },
    { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  )
  return { upstream, port, staleCookie, lines }
}

function ask(port: number, path: string, cookie: string | undefined): Socket {
  const socket = connect(port, '127.0.0.1')
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${cookie ? `Cookie: ${cookie}\r\n` : ''}\r\n`,
  )
  socket.on('error', () => {})
  return socket
}

const closed = (socket: Socket) => new Promise<void>((resolve) => socket.once('close', () => resolve()))

t.test(
  'a browser that stops reading a download is cut off after server.sendTimeout, and so is its upstream call',
  async (t) => {
    const { upstream, port, staleCookie, lines } = await setup(t)
    for (const [name, path, cookie] of [
      ['hijacked reply', '/pub/file', undefined],
      ["Fastify's send", '/maybe/file', staleCookie],
      ['hijacked reply, again', '/pub/file', undefined],
    ] as const) {
      upstream.cut.length = 0
      const socket = ask(port, path, cookie)
      // Never reads: the gateway's writes back up, and it stops reading the upstream.
      socket.pause()
      t.teardown(() => socket.destroy())
      const started = Date.now()
      const gone = closed(socket)
      const cut = await upstream.cutWithin(10 * SEND_TIMEOUT)
      t.ok(cut !== undefined, `${name}: the upstream call was given up`)
      t.ok(
        (cut ?? Number.POSITIVE_INFINITY) - started >= SEND_TIMEOUT,
        `${name}: not before sendTimeout (${(cut ?? Number.NaN) - started} ms)`,
      )
      // Resumed only to see the close: what arrived meanwhile is the sockets' buffers.
      socket.resume()
      await gone
      t.pass(`${name}: the browser's connection was closed`)
    }
    // A client can stall answers at will: one line a minute per route, not one per stall.
    const stalls = lines.filter((line) => line.msg.startsWith('browser took none of the answer'))
    t.equal(stalls.length, 2, 'one warning per route for three stalls')
  },
)

t.test(
  'a browser that reads slowly, each pause shorter than sendTimeout, gets the whole download',
  async (t) => {
    const { upstream, port, staleCookie } = await setup(t)
    for (const [name, path, cookie] of [
      ['hijacked reply', '/pub/file', undefined],
      ["Fastify's send", '/maybe/file', staleCookie],
    ] as const) {
      const socket = ask(port, path, cookie)
      t.teardown(() => socket.destroy())
      let received = 0
      let pauses = 0
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length
        // A stall shorter than the timeout after every 8 MiB.
        if (Math.floor((received - chunk.length) / STRETCH) !== Math.floor(received / STRETCH)) {
          pauses++
          socket.pause()
          setTimeout(() => socket.resume(), PAUSE)
        }
      })
      await new Promise<void>((resolve) => socket.once('end', () => resolve()))
      t.ok(received > BODY, `${name}: all ${BODY} bytes and the head arrived (${received})`)
      t.ok(pauses >= 7, `${name}: the browser paused ${pauses} times`)
      t.same(upstream.cut, [], `${name}: nothing was cut`)
    }
  },
)
