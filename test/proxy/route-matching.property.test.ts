import fc from 'fast-check'
import t from 'tap'
import { startEchoUpstream } from '../../dev/upstream.js'
import { buildTestApp } from '../helpers/app.js'
import { route } from '../helpers/gateway.js'

t.test('a route matches its prefix on whole segments only, for generated paths', async (t) => {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const app = await buildTestApp(t, { routes: [route('/api', upstream.url, { token: 'none', csrf: false })] })
  // '.' and '..' are not segments: a client's URL parser removes them before sending.
  const segment = fc.stringMatching(/^[a-z0-9._~-]{1,8}$/).filter((s) => s !== '.' && s !== '..')
  await fc.assert(
    fc.asyncProperty(segment, fc.array(segment, { maxLength: 3 }), async (glued, rest) => {
      const inside = `/api/${[glued, ...rest].join('/')}`
      const outside = `/api${glued}`
      const a = await app.inject(inside)
      const b = await app.inject(outside)
      // Matched means forwarded, or refused by @fastify/http-proxy's traversal
      // guard for dot-dot-looking segments (400): never a 404, never another route.
      return a.statusCode !== 404 && (a.statusCode === 200 || a.statusCode === 400) && b.statusCode === 404
    }),
    { numRuns: 150 },
  )
  t.pass('150 generated paths: /api/<x> forwarded, /api<x> not')
})
