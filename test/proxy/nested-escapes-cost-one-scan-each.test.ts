import { performance } from 'node:perf_hooks'
import t from 'tap'
import { upstreamReading } from '../../src/path-reading.js'
import { upstreamReadsPathAsWeDo } from '../../src/proxy/path-check.js'
import { listeningTestApp } from '../helpers/app.js'
import { route } from '../helpers/gateway.js'
import { serveHttp } from '../helpers/http-server.js'
import { rawCall } from '../helpers/scripted-upstream.js'

/**
 * `%25` then `25` n times decodes one level per pass, n passes over the
 * whole path: the path check decoded "while anything decodes", so a 14 KB
 * target (inside the 16 KB header limit) held the event loop for about
 * 240 ms (and as long again in the reading of a route with deeper routes),
 * every request. A path is now decoded at most four times (an upstream, and
 * proxies before it), and one still encoded after that is refused.
 */
const nested = (levels: number, tail: string) => `/api/%25${'25'.repeat(levels)}${tail}`

t.test('a path still encoded after four decodes is refused, at the cost of four scans', async (t) => {
  const seen: string[] = []
  const upstream = await serveHttp(t, (req, res) => {
    seen.push(req.url ?? '')
    res.end()
  })
  const { url } = await listeningTestApp(t, {
    routes: [route('/api/admin', upstream, { token: 'none' }), route('/api', upstream, { token: 'none' })],
  })
  const deep = nested(7_000, '41')
  t.notOk(upstreamReadsPathAsWeDo(deep), '7,000 levels of %25: refused')
  // The quickest of five, so a busy machine's pause is not taken for the cost.
  let took = Number.POSITIVE_INFINITY
  for (let run = 0; run < 5; run++) {
    const started = performance.now()
    upstreamReadsPathAsWeDo(deep)
    upstreamReading(deep)
    took = Math.min(took, performance.now() - started)
  }
  t.ok(took < 50, `both readings of a ${deep.length}-character path took ${took.toFixed(1)} ms`)
  const res = await rawCall(`${url}/`, {}, { path: deep })
  t.equal(res.status, 400)
  t.match(res.body.toString(), /"error":"invalid_path"/)
  t.notOk(upstreamReadsPathAsWeDo(nested(3, '41')), 'five decodes: refused')
  for (const path of ['/api/x%41', '/api/x%2541', '/api/x%252541', nested(2, '41')]) {
    t.ok(upstreamReadsPathAsWeDo(path), `${path}: at most four decodes`)
    t.equal((await rawCall(`${url}/`, {}, { path })).status, 200, path)
  }
  t.same(seen, ['/api/x%41', '/api/x%2541', '/api/x%252541', nested(2, '41')], 'those went as sent')
})
