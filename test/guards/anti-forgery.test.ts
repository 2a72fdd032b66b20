import t from 'tap'
import { startEchoUpstream } from '../../dev/upstream.js'
import { buildTestApp, seedSession } from '../helpers/app.js'
import { route } from '../helpers/gateway.js'

t.test(
  'API routes and /auth/user require the anti-forgery header and are never forwarded without it',
  async (t) => {
    const upstream = await startEchoUpstream()
    t.teardown(() => upstream.close())
    const app = await buildTestApp(t, { routes: [route('/api/orders', upstream.url)] })
    const { cookie } = await seedSession(app)
    const call = (method: string, headers: Record<string, string> = {}, url = '/api/orders') =>
      app.inject({ method: method as 'GET', url, headers: { cookie, ...headers } })

    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) {
      const res = await call(method)
      t.equal(res.statusCode, 403, method)
      t.equal(res.json().error, 'csrf_header_missing')
      t.equal((await call(method, { 'x-csrf': '0' })).statusCode, 403, `${method} with a wrong value`)
    }
    const crossSite = await call('GET', { 'x-csrf': '1', 'sec-fetch-site': 'cross-site' })
    t.equal(crossSite.statusCode, 403, 'cross-site is refused even with the header')
    const otherOrigin = await call('POST', { 'x-csrf': '1', origin: 'https://evil.example' })
    t.equal(otherOrigin.statusCode, 403)
    t.equal((await call('GET', {}, '/auth/user')).statusCode, 403)
    t.equal(upstream.requests.length, 0, 'nothing reached the upstream')
    const refused = await call('GET')
    t.equal(refused.headers['cache-control'], 'no-store', 'gateway errors are never cached')
    t.equal(refused.headers['x-content-type-options'], 'nosniff')

    // The control: the same session with the header is served, so the 403s were the header's.
    const served = await call('GET', { 'x-csrf': '1' })
    t.equal(served.statusCode, 200)
    t.equal(upstream.requests.at(-1)!.authorization, 'Bearer A1')
    t.equal((await call('GET', { 'x-csrf': '1' }, '/auth/user')).json().sub, 'alice')
  },
)
