import t from 'tap'
import { route } from '../helpers/gateway.js'
import { apiCall, login } from '../helpers/login.js'
import { one, receiveSpans, SERVER } from '../helpers/otlp-receiver.js'
import { startTwoFrontends } from '../helpers/two-frontends.js'

const receiver = await receiveSpans(t)

/**
 * With several frontends on one gateway, the same route template
 * (`/api/*`) is served for each; the server span names which frontend a
 * request was for, so a slow staff API and a slow partners API are told
 * apart in a tracing backend.
 */
t.test("a request's server span names its frontend", async (t) => {
  const s = await startTwoFrontends(
    t,
    (upstream) => ({
      staff: { routes: [route('/api', upstream)] },
      partners: { routes: [route('/api', upstream)] },
    }),
    { tracing: true },
  )
  const staff = await login(s.staff)
  const partners = await login(s.partners)
  t.equal((await apiCall(staff.jar, `${s.staff}/api/x`)).status, 200)
  t.equal((await apiCall(partners.jar, `${s.partners}/api/y`)).status, 200)
  t.equal((await fetch(`${s.staff}/healthz`)).status, 200)
  await s.running.close() // flushes the exporter

  const api = receiver.spans.filter(
    (sp) => sp.kind === SERVER && String(sp.attributes['http.route']).startsWith('/api'),
  )
  t.equal(api.length, 2, 'one server span per API call')
  t.same(api.map((sp) => sp.attributes['gatehouse.frontend']).sort(), ['partners', 'staff'])
  const callbacks = receiver.spans.filter(
    (sp) => sp.kind === SERVER && sp.name.startsWith('GET /auth/callback'),
  )
  t.same(
    callbacks.map((sp) => sp.attributes['gatehouse.frontend']).sort(),
    ['partners', 'staff'],
    'sign-in routes too',
  )
  const health = one(
    receiver.spans.filter((sp) => sp.kind === SERVER && sp.attributes['http.route'] === '/healthz'),
    'health span',
  )
  t.equal(health.attributes['gatehouse.frontend'], undefined, 'a route of no frontend names none')
})
