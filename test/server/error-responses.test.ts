import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { errorCatalogue } from '../../src/errors.js'
import { buildGateway } from '../../src/server/gateway.js'
import { route, testConfig } from '../helpers/gateway.js'

// No IdP and no upstream: every answer here is the gateway's own. The issuer
// is a closed loopback port, so discovery keeps failing in the background.
async function gateway(t: Test): Promise<{ app: FastifyInstance; logs: () => Record<string, unknown>[] }> {
  const lines: string[] = []
  const app = await buildGateway(
    testConfig({
      port: 3000,
      issuer: 'http://127.0.0.1:9',
      routes: [route('/api/orders', 'http://127.0.0.1:9')],
      logLevel: 'info',
    }),
    { logStream: { write: (line: string) => void lines.push(line) } },
  )
  app.get('/boom', async () => {
    throw new Error('internal detail that must stay in the log')
  })
  t.teardown(() => app.close())
  return { app, logs: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) }
}

function ownHeaders(t: Test, headers: Record<string, unknown>) {
  t.equal(headers['cache-control'], 'no-store')
  t.equal(headers['x-content-type-options'], 'nosniff')
}

t.test('an unexpected error is a 500 with the catalogue message and no stack', async (t) => {
  const { app, logs } = await gateway(t)
  const res = await app.inject({ method: 'GET', url: '/boom' })
  t.equal(res.statusCode, 500)
  t.same(res.json(), {
    error: 'internal_error',
    message: errorCatalogue.GATEHOUSE_ERR_INTERNAL.message,
  })
  t.notMatch(res.body, /internal detail|\bat .*\.ts:\d+/, 'neither the message nor a stack frame leaks')
  ownHeaders(t, res.headers)
  t.match(
    logs().find((line) => line.msg === 'unhandled error'),
    { level: 50, err: { message: 'internal detail that must stay in the log', stack: /boom|Error/ } },
    'the details go to the log instead',
  )
})

t.test('an unknown path is a 404 not_found body', async (t) => {
  const { app } = await gateway(t)
  const res = await app.inject({ method: 'GET', url: '/no/such/path' })
  t.equal(res.statusCode, 404)
  t.same(res.json(), { error: 'not_found', message: errorCatalogue.GATEHOUSE_ERR_NOT_FOUND.message })
  ownHeaders(t, res.headers)
})

t.test('4xx answers are { error, message } from the catalogue', async (t) => {
  const { app } = await gateway(t)
  const noCsrf = await app.inject({ method: 'GET', url: '/api/orders' })
  t.equal(noCsrf.statusCode, 403)
  t.same(noCsrf.json(), { error: 'csrf_header_missing', message: errorCatalogue.GATEHOUSE_ERR_CSRF.message })

  const noSession = await app.inject({ method: 'GET', url: '/api/orders', headers: { 'x-csrf': '1' } })
  t.equal(noSession.statusCode, 401)
  t.same(noSession.json(), {
    error: 'unauthenticated',
    message: errorCatalogue.GATEHOUSE_ERR_UNAUTHENTICATED.message,
  })

  const user = await app.inject({ method: 'GET', url: '/auth/user', headers: { 'x-csrf': '1' } })
  t.equal(user.statusCode, 401)
  t.equal(user.json().error, 'unauthenticated')
  ownHeaders(t, user.headers)

  const traversal = await app.inject({ method: 'GET', url: '/api/orders/..;/admin' })
  t.equal(traversal.statusCode, 400)
  t.same(traversal.json(), {
    error: 'invalid_path',
    message: errorCatalogue.GATEHOUSE_ERR_INVALID_PATH.message,
  })

  const logout = await app.inject({ method: 'POST', url: '/auth/backchannel-logout', payload: {} })
  t.equal(logout.statusCode, 400)
  t.match(logout.json(), { error: 'invalid_request', message: String })
})

t.test('/auth/login failures are logged, as the error page says', async (t) => {
  const { app, logs } = await gateway(t)
  const refused = await app.inject({ method: 'GET', url: '/auth/login?returnTo=//evil.example' })
  t.equal(refused.statusCode, 400)
  t.match(refused.headers['content-type'], /text\/html/)
  t.match(
    logs().find((line) => line.msg === 'login refused' && line.code === 'GATEHOUSE_ERR_INVALID_RETURN_TO'),
    { level: 30 },
  )

  const unavailable = await app.inject({ method: 'GET', url: '/auth/login' })
  t.equal(unavailable.statusCode, 503)
  t.equal(
    unavailable.headers['retry-after'],
    String(errorCatalogue.GATEHOUSE_ERR_IDP_UNAVAILABLE.retryAfter),
    'Retry-After comes from the catalogue',
  )
  t.match(unavailable.body, /identity provider/)
  t.match(
    logs().find((line) => line.msg === 'login refused' && line.code === 'GATEHOUSE_ERR_IDP_UNAVAILABLE'),
    { level: 40 },
    'an IdP outage is a warning',
  )
})
