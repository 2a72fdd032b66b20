import { AsyncLocalStorage } from 'node:async_hooks'
import type { ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { inTurn } from '../../src/server/pipelined-requests.js'
import { start } from '../../src/server/start.js'
import { listeningTestApp, UNREACHABLE_ISSUER } from '../helpers/app.js'
import { route, testConfig } from '../helpers/gateway.js'
import { serveHttp } from '../helpers/http-server.js'

/**
 * RFC 9112 §9.3.2 lets a client pipeline requests. Node hands the gateway
 * each one as it parses it, while the answers before it are still being
 * made, and stops reading the connection only once unsent answers pile up:
 * behind a slow upstream there are none. One connection that wrote requests
 * without waiting had every one of them routed and sent upstream at once
 * (2.7 MB of `GET` lines took 245 MiB of heap in 3 s, and more with each
 * write). They are now served one at a time, in order, as nginx does.
 */

/** An upstream that holds `/public/first` until told, answers the rest at once, and counts who came. */
async function upstream(t: Test) {
  const seen: string[] = []
  let held: ServerResponse | undefined
  let heldArrived: () => void = () => {}
  const firstArrived = new Promise<void>((resolve) => {
    heldArrived = resolve
  })
  let inFlight = 0
  let mostAtOnce = 0
  const url = await serveHttp(t, (req, res) => {
    seen.push(req.url ?? '')
    if (req.url === '/public/another') {
      res.end()
      return
    }
    inFlight++
    mostAtOnce = Math.max(mostAtOnce, inFlight)
    res.on('finish', () => inFlight--)
    if (req.url === '/public/first') {
      held = res
      heldArrived()
    } else res.end(`${req.url}\n`)
  })
  return {
    url,
    seen,
    firstArrived,
    release: () => held?.end('/public/first\n'),
    mostAtOnce: () => mostAtOnce,
  }
}

const PIPELINED = 400

function pipeline(port: number): { socket: Socket; answers: Promise<string[]> } {
  const requests = ['first', ...Array.from({ length: PIPELINED }, (_, i) => `n${i}`)]
  const bytes = requests.map((name) => `GET /public/${name} HTTP/1.1\r\nHost: x\r\n\r\n`).join('')
  const socket = connect(port, '127.0.0.1', () => socket.write(bytes))
  const answers = new Promise<string[]>((resolve, reject) => {
    let received = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      received += chunk
      const bodies = [...received.matchAll(/\r\n\r\n(\/public\/\w+)\n/g)].map((m) => m[1]!)
      if (bodies.length === requests.length) {
        socket.destroy()
        resolve(bodies)
      }
    })
    socket.on('error', reject)
  })
  return { socket, answers }
}

/** One request on a connection of its own, answered at once by the upstream. */
async function another(url: string): Promise<number> {
  const res = await fetch(`${url}/public/another`)
  await res.text()
  return res.status
}

async function servedInTurn(t: Test, port: number, up: Awaited<ReturnType<typeof upstream>>) {
  const base = `http://127.0.0.1:${port}`
  const { answers } = pipeline(port)
  await up.firstArrived
  // Another connection is served meanwhile: by its answer, requests the
  // gateway had parsed from the pipeline's first read were long queued at
  // the upstream ahead of it.
  t.equal(await another(base), 200, 'another connection is served while the first request is held')
  t.same(
    up.seen.filter((url) => url.startsWith('/public/n')),
    [],
    'nothing behind the held request reached the upstream',
  )
  up.release()
  const bodies = await answers
  t.same(
    bodies,
    ['/public/first', ...Array.from({ length: PIPELINED }, (_, i) => `/public/n${i}`)],
    'every pipelined request answered, in order',
  )
  t.equal(up.mostAtOnce(), 1, 'the upstream never had two of the pipelined requests at once')
}

t.test('an app listening on its own server serves a connection one request at a time', async (t) => {
  const up = await upstream(t)
  const { port } = await listeningTestApp(t, {
    routes: [route('/public', up.url, { token: 'none', csrf: false })],
  })
  await servedInTurn(t, port, up)
})

t.test('the gateway as started serves a connection one request at a time', async (t) => {
  const up = await upstream(t)
  const running = await start(
    testConfig({
      port: 0,
      issuer: UNREACHABLE_ISSUER,
      routes: [route('/public', up.url, { token: 'none', csrf: false })],
    }),
    { handleSignals: false },
  )
  t.teardown(() => running.close())
  await servedInTurn(t, Number(new URL(running.url).port), up)
})

t.test('a request that waited its turn is served in its own async context, not the one ahead', async (t) => {
  // Its turn comes inside the finish of the answer ahead; served there, its
  // trace and log lines would be that request's (tracing binds them so).
  const store = new AsyncLocalStorage<string>()
  const contexts: (string | undefined)[] = []
  const url = await serveHttp(
    t,
    inTurn((req, res) => {
      contexts.push(store.getStore())
      store.run(req.url ?? '', () => setImmediate(() => res.end('.')))
    }),
  )
  const port = Number(new URL(url).port)
  await new Promise<void>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () =>
      socket.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n'),
    )
    let received = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      received += chunk
      if (received.match(/HTTP\/1\.1 200 /g)?.length === 2) {
        socket.destroy()
        resolve()
      }
    })
    socket.on('error', reject)
  })
  t.same(contexts, [undefined, undefined], "neither request sees another's context")
})

t.test("Node still counts an answer's unsent bytes through the hook inTurn leans on", async (t) => {
  // inTurn stops Node reading a connection whose requests wait through
  // `_onPendingData`, a private member of each ServerResponse; were a Node
  // release to drop it, the waiting would go on but the reading would not
  // stop, and a pipelining client could fill the memory again.
  let hook: unknown
  const url = await serveHttp(t, (_req, res) => {
    hook = (res as unknown as { _onPendingData?: unknown })._onPendingData
    res.end('.')
  })
  const res = await fetch(`${url}/`)
  await res.text()
  t.equal(typeof hook, 'function', 'ServerResponse#_onPendingData is there to count with')
})
