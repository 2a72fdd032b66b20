import type { IncomingMessage, ServerResponse } from 'node:http'
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { upstreamReading } from '../../src/path-reading.js'
import { listeningTestApp } from '../helpers/app.js'
import { route } from '../helpers/gateway.js'
import { serveHttp } from '../helpers/http-server.js'
import { rawCall } from '../helpers/scripted-upstream.js'

/**
 * A route is chosen on the path as the router reads it: percent-escapes
 * decoded, but not `%2F`, and nothing else folded. Many upstreams read more:
 * they decode `%2F` (and `%5C`, and again what decoded, through a proxy that
 * decodes), take `\` for `/`, merge `//` runs (nginx, Spring), drop `;`
 * path parameters (Tomcat, Spring), trim trailing dots (IIS) or fold case
 * (Express, ASP.NET Core). A spelling that the upstream of a broader route
 * reads as a deeper route's path reached that path under the broader route's
 * rules: here `/api/admin` takes only GET and `/api` every method.
 */
async function setup(t: Test) {
  const seen: string[] = []
  const recorder = (name: string) => (req: IncomingMessage, res: ServerResponse) => {
    seen.push(`${name} ${req.method} ${req.url}`)
    res.end(name)
  }
  const admin = await serveHttp(t, recorder('admin'))
  const api = await serveHttp(t, recorder('api'))
  const site = await serveHttp(t, recorder('site'))
  const { url } = await listeningTestApp(t, {
    routes: [
      route('/api/admin', admin, { token: 'none', methods: ['GET'] }),
      route('/api', api, { token: 'none' }),
      route('/', site, { token: 'none', csrf: false }),
    ],
  })
  return { seen, call: (path: string, method = 'GET') => rawCall(`${url}/`, {}, { path, method }) }
}

/** Each reads as `/api/admin/...` to some upstream, yet the router put it under `/api` or `/`. */
const ANOTHER_ROUTES = [
  '/api/admin%2Fx',
  '/api/admin%2fx',
  '/api%2Fadmin/x',
  '/api%2fadmin%2fx',
  '/api/admin%252Fx',
  '/api/admin%25252fx',
  '/api/admin%5Cx',
  '/api/admin%255Cx',
  '/api/admin%2F',
  '/api//admin/x',
  '/api///admin',
  '/api/admin;x=1/x',
  '/api/admin;/x',
  '/api;v=2/admin/x',
  '/api/admin%3Bx/y',
  '/api/admin./x',
  '/api/admin%2e/x',
  '/api/admin%20/x',
  '/API/admin/x',
  '/Api/Admin',
  '/api/ADMIN/x',
  '/api/%41dmin/x',
  '/api/adm%C4%B1n/x',
  '/api/admin%3F/x',
  '/api/admin%23/x',
]

t.test("a spelling that an upstream reads as a deeper route's path is refused, sent nowhere", async (t) => {
  const { seen, call } = await setup(t)
  for (const path of ANOTHER_ROUTES) {
    for (const method of ['GET', 'POST']) {
      const res = await call(path, method)
      t.equal(res.status, 400, `${method} ${path}`)
      t.match(res.body.toString(), /"error":"invalid_path"/, `${method} ${path}`)
    }
  }
  t.same(seen, [], 'no upstream saw any of them')
})

t.test('a path its own route would serve however it is read reaches that route as sent', async (t) => {
  const { seen, call } = await setup(t)
  for (const [path, expected] of [
    ['/api/admin/x', 'admin GET /api/admin/x'],
    ['/api/admin/a%2Fb', 'admin GET /api/admin/a%2Fb'],
    ['/api/admin//x', 'admin GET /api/admin//x'],
    ['/api/admin/X;y=1', 'admin GET /api/admin/X;y=1'],
    ['/api/files/a%2Fb', 'api GET /api/files/a%2Fb'],
    ['/api/files/a%252Fadmin', 'api GET /api/files/a%252Fadmin'],
    ['/api/items//x', 'api GET /api/items//x'],
    ['/api/Orders/AB12', 'api GET /api/Orders/AB12'],
    ['/api/administrators', 'api GET /api/administrators'],
    ['/api/admins%2Fx', 'api GET /api/admins%2Fx'],
    ['/api/x;admin', 'api GET /api/x;admin'],
    ['/api/v1.2/x', 'api GET /api/v1.2/x'],
    ['/assets/index-B3xYz.js', 'site GET /assets/index-B3xYz.js'],
    ['/Products/Shoes%2FRed', 'site GET /Products/Shoes%2FRed'],
    ['/apiary', 'site GET /apiary'],
  ] as const) {
    seen.length = 0
    const res = await call(path)
    t.equal(res.status, 200, path)
    t.same(seen, [expected], `${path} reached its route's upstream as sent`)
  }
})

t.test('whatever the spelling, a forwarded path reaches the route its reading names', async (t) => {
  const { seen, call } = await setup(t)
  const piece = fc.constantFrom(
    '/',
    '//',
    'api',
    'API',
    'admin',
    'Admin',
    '%61dmin',
    '%2F',
    '%2f',
    '%252F',
    '%5C',
    '\\',
    ';',
    ';v=1',
    '.',
    '%2e',
    '%20',
    '%3F',
    'x',
    'X',
  )
  const paths = fc.array(piece, { minLength: 1, maxLength: 8 }).map((parts) => `/${parts.join('')}`)
  /** The route an upstream that reads most liberally takes the path for: the longest prefix of its reading. */
  const routeOf = (path: string) => {
    const reading = upstreamReading(path)
    const under = (prefix: string) => reading === prefix || reading.startsWith(`${prefix}/`)
    return under('/api/admin') ? 'admin' : under('/api') ? 'api' : 'site'
  }
  let forwarded = 0
  await fc.assert(
    fc.asyncProperty(paths, async (path) => {
      seen.length = 0
      const res = await call(path, 'POST')
      if (res.status >= 400 && res.status < 500 && seen.length === 0) return true
      forwarded++
      // POST is not one of /api/admin's methods: it may only be refused there.
      return (
        res.status === 200 &&
        seen.length === 1 &&
        seen[0]!.split(' ')[0] === routeOf(path) &&
        routeOf(path) !== 'admin'
      )
    }),
    { numRuns: 300 },
  )
  t.ok(forwarded > 0, `${forwarded} of 300 generated paths forwarded, each to the route its reading names`)
})
