import t from 'tap'
import { CookieJar } from '../helpers/cookie-jar.js'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { REFUSED_URL } from '../helpers/ports.js'
import { defaultRoutes, startStack } from '../helpers/stack.js'

t.test('upstream refusing, hanging or resetting: 502/504 JSON, session kept, process up', async (t) => {
  const refused = REFUSED_URL
  const stack = await startStack(t, {
    routes: (upstream) => [
      ...defaultRoutes(upstream),
      route('/api/refused', refused),
      route('/api/slow', upstream, { timeout: 300 }),
    ],
  })
  const base = stack.gateway.url
  const { jar } = await login(base)

  const r1 = await apiCall(jar, `${base}/api/refused/x`)
  t.equal(r1.status, 502, 'connection refused')
  t.same(r1.json(), { error: 'upstream_unreachable', message: r1.json().message })

  const r2 = await apiCall(jar, `${base}/api/slow/hang`)
  t.equal(r2.status, 504, 'no answer within the route timeout')
  t.equal(r2.json().error, 'upstream_timeout')

  const r3 = await apiCall(jar, `${base}/api/orders/reset`)
  t.equal(r3.status, 502, 'connection reset')

  t.equal(
    (await apiCall(jar, `${base}/api/orders/ok`)).status,
    200,
    'the session survived and the gateway still serves',
  )
  t.equal((await apiCall(jar, `${base}/auth/user`)).status, 200)
})

t.test('routes match whole path segments: /api/orders does not match /api/ordersx', async (t) => {
  const stack = await startStack(t)
  const base = stack.gateway.url
  const { jar } = await login(base)
  for (const path of ['/api/orders', '/api/orders/', '/api/orders/1', '/api/orders?x=1']) {
    t.equal((await apiCall(jar, `${base}${path}`)).status, 200, path)
  }
  stack.upstream.clear()
  for (const path of ['/api/ordersx', '/api/orders-archive', '/apix', '/api']) {
    t.equal((await apiCall(jar, `${base}${path}`)).status, 404, path)
  }
  t.equal(stack.upstream.requests.length, 0, 'nothing was forwarded')
  const anonymous = await apiCall(new CookieJar(), `${base}/api/public/../orders`)
  t.equal(anonymous.status, 401, 'a dot-segment cannot walk from a public route into a user route')
})
