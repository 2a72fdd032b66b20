import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { route } from '../helpers/gateway.js'
import { login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

/** An upstream that sends one Server-Sent Event and holds the stream open until told to finish. */
async function eventSource() {
  let held: ServerResponse | undefined
  let finished = false
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.write(`data: first ${req.headers.authorization ? 'with' : 'without'} a token\n\n`)
    held = res
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get finished() {
      return finished
    },
    finish() {
      held!.end('data: last\n\n')
      finished = true
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

t.test(
  'Server-Sent Events pass through unbuffered: the first event arrives before the upstream finishes',
  async (t) => {
    const source = await eventSource()
    t.teardown(() => source.close())
    const stack = await startStack(t, { routes: () => [route('/events', source.url)] })
    const { jar } = await login(stack.gateway.url)
    const url = `${stack.gateway.url}/events/stream`
    const response = await fetch(url, { headers: { cookie: jar.header(url)!, 'x-csrf': '1' } })
    t.equal(response.status, 200)
    t.equal(response.headers.get('content-type'), 'text/event-stream')
    const reader = response.body!.getReader()
    const first = await reader.read()
    t.equal(new TextDecoder().decode(first.value), 'data: first with a token\n\n')
    t.notOk(source.finished, 'the upstream has not finished the stream yet')
    source.finish()
    let rest = ''
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      rest += new TextDecoder().decode(chunk.value)
    }
    t.equal(rest, 'data: last\n\n')
  },
)
