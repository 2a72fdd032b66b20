import t, { type Test } from 'tap'
import { browserGet, holdingUpstream } from '../helpers/abandoning.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { defaultRoutes, type Stack, startStack } from '../helpers/stack.js'
import {
  browserHeaders,
  closed,
  metrics,
  openSocket,
  until,
  wsUpstream,
  wsUrl,
} from '../helpers/websocket.js'

/**
 * A request whose connection closes before its answer is complete never
 * reaches Fastify's onResponse, so it had no access line and no metric
 * sample: a browser giving up on a slow upstream left no trace outside
 * tracing. It is counted in gatehouse_http_requests_abandoned_total, and
 * the access log gives it a line marked `abandoned`.
 */

/** The value of one sample in Prometheus text, 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && wanted.every((pair) => l.includes(pair)))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

async function stackWith(t: Test, upstream: string, accessLog: boolean) {
  const lines: Record<string, unknown>[] = []
  const stack = await startStack(t, {
    config: { logLevel: 'info', accessLog },
    routes: (echo) => [...defaultRoutes(echo), route('/api/slow', upstream)],
    gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
  })
  const access = () => lines.filter((l) => l.msg === 'request')
  return { stack, access }
}

const abandoned = async (stack: Stack) =>
  sample(await metrics(stack), 'gatehouse_http_requests_abandoned_total', {
    route: '/api/slow/*',
    method: 'GET',
  })
const answered = async (stack: Stack) =>
  sample(await metrics(stack), 'gatehouse_http_requests_total', { route: '/api/slow/*' })

t.test('a request abandoned before the upstream answers is counted, and logged as abandoned', async (t) => {
  const upstream = await holdingUpstream(t, () => {})
  const { stack, access } = await stackWith(t, upstream.url, true)
  const { jar } = await login(stack.gateway.url)
  const url = `${stack.gateway.url}/api/slow/x?secret=query`
  const browser = browserGet(url, jar.header(url) ?? '')
  await upstream.arrival
  browser.destroy()
  await upstream.release
  t.ok(await until(async () => (await abandoned(stack)) === 1), 'gatehouse_http_requests_abandoned_total: 1')
  t.equal(await answered(stack), 0, 'and not as answered')
  const line = access().find((l) => l.path === '/api/slow/*')
  t.match(line, { method: 'GET', abandoned: true, ms: Number }, 'one access line, marked')
  t.notOk(line && 'status' in line, 'with no status: none was sent')
  t.notMatch(JSON.stringify(access()), /secret=query/, 'and without the query')
})

t.test('an answer abandoned mid-body: its line keeps the status that was sent', async (t) => {
  const upstream = await holdingUpstream(t, (res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('the first part')
  })
  const { stack, access } = await stackWith(t, upstream.url, true)
  const { jar } = await login(stack.gateway.url)
  const url = `${stack.gateway.url}/api/slow/x`
  const browser = browserGet(url, jar.header(url) ?? '')
  browser.once('response', () => browser.destroy())
  await upstream.release
  t.ok(await until(async () => (await abandoned(stack)) === 1), 'counted')
  t.ok(await until(() => access().some((l) => l.path === '/api/slow/*')), 'logged once the close is seen')
  t.match(
    access().filter((l) => l.path === '/api/slow/*'),
    [{ status: 200, abandoned: true }],
  )
})

t.test('answered requests and WebSockets are not counted as abandoned, access log off or on', async (t) => {
  for (const accessLog of [false, true]) {
    const ws = await wsUpstream(t)
    const lines: Record<string, unknown>[] = []
    const stack = await startStack(t, {
      config: { logLevel: 'info', accessLog },
      routes: (echo) => [...defaultRoutes(echo), route('/api/live', ws.url, { websocket: true })],
      gateway: { logStream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
    })
    const { jar } = await login(stack.gateway.url)
    t.equal((await apiCall(jar, `${stack.gateway.url}/api/orders/1`)).status, 200)
    const socket = await openSocket(wsUrl(stack, '/api/live/feed'), browserHeaders(stack, jar))
    const done = closed(socket)
    socket.close()
    await done
    t.ok(
      await until(async () =>
        /gatehouse_websockets_open\{route="\/api\/live"\} 0/.test(await metrics(stack)),
      ),
      'the socket is closed at the gateway',
    )
    t.notMatch(
      await metrics(stack),
      /gatehouse_http_requests_abandoned_total\{/,
      `accessLog ${accessLog}: nothing abandoned`,
    )
    const access = lines.filter((l) => l.msg === 'request')
    if (accessLog) {
      t.ok(
        access.some((l) => l.path === '/api/orders/*'),
        'the API call has its line',
      )
      t.notOk(
        access.some((l) => 'abandoned' in l),
        'no line says abandoned',
      )
    } else t.same(access, [], 'no access line')
    await stack.close()
  }
})
