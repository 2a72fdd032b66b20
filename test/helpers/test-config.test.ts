import t from 'tap'
import { ConfigError } from '../../src/config/errors.js'
import { route, testConfig } from './gateway.js'

const base = { port: 4321, issuer: 'http://127.0.0.1:9' }

t.test('testConfig is resolved by the real parser: its defaults, its derived values, frozen', async (t) => {
  const config = testConfig({
    ...base,
    routes: [route('/api/orders/', 'http://orders:8080/', { passHeaders: ['X-Real-IP'] })],
  })
  t.equal(config.server.headersTimeout, 10_000, 'the schema default')
  t.equal(config.session.idleTimeout, 30 * 60_000)
  t.equal(config.session.cookieName, 'gatehouse')
  const [orders] = config.routes
  t.equal(orders!.path, '/api/orders', 'trailing slash trimmed')
  t.equal(orders!.rewritePath, '/api/orders', 'rewritePath defaults to path')
  t.equal(orders!.upstream, 'http://orders:8080')
  t.equal(orders!.bodyLimit, 1024 * 1024)
  t.same(orders!.passHeaders, ['x-real-ip'])
  t.equal(orders!.timeout, 5_000, "the tests' upstream timeout, in milliseconds")
  t.ok(Object.isFrozen(config.routes[0]))
})

t.test('testConfig refuses what a user config would be refused for', async (t) => {
  t.throws(
    () => testConfig({ ...base, routes: [route('/api', 'http://u', { anonymous: true })] }),
    ConfigError,
  )
  t.throws(() => testConfig({ ...base, secrets: ['short'], routes: [] }), {
    message: /session\.secrets\[0\]: must be at least 32 characters/,
  })
})
