import type { Test } from 'tap'
import t from 'tap'
import { apiCall, login } from '../helpers/login.js'
import { startStack } from '../helpers/stack.js'

async function requestLines(t: Test, accessLog: boolean): Promise<Record<string, unknown>[]> {
  const lines: string[] = []
  const stack = await startStack(t, {
    config: { logLevel: 'info', accessLog },
    gateway: { logStream: { write: (line: string) => void lines.push(line) } },
  })
  const { jar } = await login(stack.gateway.url)
  const response = await apiCall(jar, `${stack.gateway.url}/api/orders/7?secret=query`)
  t.equal(response.status, 200)
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((l) => l.msg === 'request')
}

t.test('logging.accessLog: one line per request, by route and without the query', async (t) => {
  const lines = await requestLines(t, true)
  const api = lines.find((line) => line.path === '/api/orders/*')
  t.ok(api, 'the API call was logged under its route')
  t.match(api, { method: 'GET', status: 200, ms: Number })
  t.ok(typeof api?.reqId === 'string', 'with its request id')
  t.notMatch(JSON.stringify(lines), /secret=query/)
})

t.test('the access log is off by default', async (t) => {
  t.same(await requestLines(t, false), [])
})
